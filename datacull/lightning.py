"""Lightning: a callback that logs per-sample metrics and resamples a ``DCDataLoader`` before every epoch.

The LightningModule stays as it is: its ``train_dataloader()`` returns the ``DCDataLoader`` and its
``training_step`` returns ``{"loss": loss, "per_sample": {"loss": losses}}`` (per-sample values keyed by
the metric name the importance reads). Lightning is an optional extra; only this module imports it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .data import DCDataLoader
from .errors import InputError
from .importance import DCImportance, ImportanceScores
from .logger import DCLogger
from .score_source import ScoreSource

try:
    from lightning.pytorch import Callback
except ImportError:
    try:
        from pytorch_lightning import Callback
    except ImportError:
        raise ImportError('datacull.lightning needs Lightning: pip install "datacull[lightning]"') from None

__all__ = ["DataCullCallback", "loss_weights"]
log = logging.getLogger("datacull")

_DEVICE_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def loss_weights(loader: Any, index: torch.Tensor) -> torch.Tensor:
    """The loss weight of each sample of the batch: ``loader.sample_weights[index]``, or ones when the
    sampler does not reweight (or ``loader`` is a plain ``DataLoader``, e.g. of a scoring run). Multiply the per-sample losses by it before reducing (InfoBatch needs it).

    The dense weights are copied to ``index``'s device once per resample, so no step syncs with the host.
    """
    # the running pass's weights: a resample() during the pass chooses the next pass's subset and weights
    weights = getattr(loader, "pass_weights", getattr(loader, "sample_weights", None))
    if weights is None:
        return torch.ones(index.shape, device=index.device)
    cached = _DEVICE_WEIGHTS.get(loader)
    if cached is None or cached[0] is not weights or cached[1].device != index.device:
        cached = (weights, weights.to(index.device))
        _DEVICE_WEIGHTS[loader] = cached
    return cached[1][index]


class DataCullCallback(Callback):
    """Logs per-sample metrics into ``DCLogger``s and resamples ``loader`` before each training epoch.

    - ``loader``: the ``DCDataLoader`` that the module's ``train_dataloader()`` returns, or None for a run
      that only logs (e.g. a full-data scoring run for a static importance).
    - ``importance``: a ``DCImportance`` (an online one, e.g. RCAP, is recomputed before every resample; a
      static one, e.g. AUM over a finished scoring run, is computed once), precomputed scores (one per
      sample), or None for samplers that ignore scores (random, RS2).
    - ``loggers``: ``{metric name: DCLogger}``; a single ``DCLogger`` is named after the importance's metric
      (``importance.requires[0]``, else ``"loss"``). By default an online importance's own logger. Each
      ``training_step`` returns ``{"loss": ..., "per_sample": {name: (B, *) values}}``; the sample indices
      are the batch's last element (``DCDataset``'s), or ``"index"`` in the returned dict.
    - ``resample_every``: a dynamic sampler chooses a new subset every this many epochs.

    The subset for epoch e is chosen before Lightning sets up epoch e's data: at ``on_fit_start`` for the
    first epoch, at the end of epoch e - 1 for the others (after the loggers are flushed). The loader's
    sampler then walks the new subset, so the Trainer needs no reload while the subset size stays the same;
    samplers whose subset size changes (InfoBatch) need ``reload_dataloaders_every_n_epochs=1``, and the
    callback says so instead of letting Lightning cut epochs short. Its ``state_dict`` (the loader's subset,
    weights and generators, an online importance's state) is saved in Lightning checkpoints, so a resumed
    ``fit(ckpt_path=...)`` trains on the same subsets.

    Under ``strategy="ddp"`` (or ``"ddp_spawn"``) every rank trains a disjoint share of the same subset and the
    loggers merge the ranks' per-sample values before the importance reads them (see :class:`DCDataLoader` and
    :class:`DCLogger`). The loader's own sharding wins over Lightning's automatic ``DistributedSampler``: its
    sampler is a ``DistributedSampler``, which Lightning leaves in place, because Lightning's replacement would
    rebuild the loader (so the callback would resample a loader nobody iterates) and count each rank's samples once,
    which a subset that changes size (InfoBatch) outgrows.
    """

    def __init__(
        self,
        loader: DCDataLoader | None,
        importance: Any = None,
        loggers: DCLogger | Mapping[str, DCLogger] | None = None,
        *,
        resample_every: int = 1,
    ):
        if loader is not None and not isinstance(loader, DCDataLoader):
            raise InputError(
                f"DataCullCallback needs a DCDataLoader (or None to only log); got {type(loader).__name__}"
            )
        if int(resample_every) < 1:
            raise InputError(f"DataCullCallback resample_every must be >= 1; got {resample_every}")
        if loader is None and importance is not None:
            raise InputError(
                "DataCullCallback(None, importance) would prune nothing: it resamples the loader it is given. A "
                "LightningDataModule that builds its loader in setup() must build the DCDataLoader earlier (in its "
                "__init__) and pass it here; loader=None is for a run that only logs (loggers=...)"
            )
        if loader is not None and loader.requires_scores and importance is None:
            raise InputError(
                f"{type(loader).__name__} ranks samples by importance: pass importance= (a DCImportance or scores)"
            )
        self.loader = loader
        self.importance = importance
        self.source = (
            None if loader is None else ScoreSource(loader, importance, resample_every=resample_every)
        )
        self.loggers = self._named_loggers(loggers)
        if loader is None and not self.loggers:
            raise InputError("DataCullCallback has nothing to do: give it a DCDataLoader, loggers, or both")
        self.epochs_done = 0  # epochs whose end this callback has seen: where a resumed fit continues
        self.batches_this_epoch = 0  # a checkpoint written mid-epoch cannot resume its subset's position
        self._restored = False
        self._told_precision = False

    def _named_loggers(self, loggers: Any) -> dict[str, DCLogger]:
        importance = self.importance if isinstance(self.importance, DCImportance) else None
        if loggers is None:  # a static importance's logger holds its scoring run: never write into it
            online = (
                self.source.online
                if self.source is not None
                else importance is not None and importance.online
            )
            use = online and importance is not None and importance.logger is not None
            loggers = importance.logger if use and importance.requires else {}
        if isinstance(loggers, DCLogger):
            loggers = {importance.requires[0] if importance and importance.requires else "loss": loggers}
        if not isinstance(loggers, Mapping) or not all(isinstance(v, DCLogger) for v in loggers.values()):
            raise InputError("DataCullCallback loggers= must be a DCLogger or a {metric name: DCLogger} dict")
        return dict(loggers)

    # ---------------------------------------------------------------------------------------- Lightning hooks
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit" or trainer.world_size == 1:
            return
        if self.loader is not None and not self.loader.distributed:
            raise InputError(
                f"{type(self.loader).__name__}(distributed=False) under {trainer.world_size} ranks would train the "
                "whole subset on every rank: drop distributed=False, so that each rank trains its share"
            )
        alone = [name for name, logger in self.loggers.items() if not logger.use_process_group]
        if alone:
            raise InputError(
                f"DCLogger(distributed=False) for {alone[0]!r} under {trainer.world_size} ranks: every rank would "
                "write its own share into the same folder; drop distributed=False, so that the ranks merge"
            )
        if self.loader is not None:  # built before Lightning started the ranks: take rank 0's seed
            self.loader.join_process_group()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        planned = getattr(self.loader, "num_epochs", None)
        if self.loader is not None and self.loader.needs_num_epochs and trainer.max_epochs not in (None, -1):
            if planned != trainer.max_epochs:
                log.warning(
                    "%s planned num_epochs=%s but the Trainer runs max_epochs=%d: it anneals over the Trainer's %d",
                    type(self.loader).__name__,
                    planned,
                    trainer.max_epochs,
                    trainer.max_epochs,
                )
                self.loader.num_epochs = int(trainer.max_epochs)
        if not self._restored and self.source is not None:  # a restored one prepared its epoch on loading
            self.source.start()
            self.source.prepare(trainer.current_epoch)
        self._restored = False

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.batches_this_epoch = 0
        if self.source is not None:  # a no-op unless the previous epoch's end did not prepare this one
            self.source.prepare(trainer.current_epoch)
        if self.loader is None:
            return
        if trainer.train_dataloader is not self.loader:
            raise InputError(
                "DataCullCallback: the Trainer trains on another loader; return the callback's DCDataLoader from train_dataloader()"
            )
        planned, batches = trainer.num_training_batches, len(self.loader)
        limit = trainer.limit_train_batches
        if isinstance(limit, float) and limit == 1.0 and planned != batches:
            raise InputError(
                f"DataCullCallback: epoch {trainer.current_epoch}'s subset has {batches} batches but the Trainer "
                f"planned {planned}; the subset size changes between epochs, so pass "
                "reload_dataloaders_every_n_epochs=1 to the Trainer"
            )

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.batches_this_epoch += 1
        if not self.loggers or outputs is None:  # training_step returned None: Lightning skipped the batch
            return
        per_sample = outputs.get("per_sample") if isinstance(outputs, Mapping) else None
        missing = [
            name for name in self.loggers if not isinstance(per_sample, Mapping) or name not in per_sample
        ]
        if missing:
            raise InputError(
                f'DataCullCallback: training_step must return {{"loss": ..., "per_sample": {{"{missing[0]}": (B,) values}}}} '
                f"to log {', '.join(missing)}"
            )
        index = outputs.get("index")
        if index is None:
            index = batch[-1] if isinstance(batch, tuple | list) else None
        if not isinstance(index, torch.Tensor):
            raise InputError(
                'DataCullCallback: the batch\'s last element must be the sample indices (wrap the dataset in DCDataset) or training_step must return "index"'
            )
        for name, logger in self.loggers.items():
            values = per_sample[name]
            if values.dtype in (torch.bfloat16, torch.float16) and not self._told_precision:
                self._told_precision = True
                log.warning(
                    "DataCullCallback: per_sample[%r] arrives in %s (mixed precision): scores computed from it tie "
                    "where fp32 would rank; return it in fp32 (e.g. recompute the last layer outside autocast)",
                    name,
                    values.dtype,
                )
            logger.log_metric(
                trainer.current_epoch, index, values.float() if values.is_floating_point() else values
            )

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.epochs_done = trainer.current_epoch + 1
        self.batches_this_epoch = 0
        for logger in self.loggers.values():
            logger.flush()
        if self.source is None:
            return
        max_epochs = trainer.max_epochs
        more = max_epochs is None or max_epochs < 0 or self.epochs_done < max_epochs
        self.source.epoch_end(trainer.current_epoch, last=not more)
        if more:
            self.source.prepare(self.epochs_done)  # before Lightning sets up the next epoch's data

    def state_dict(self) -> dict[str, Any]:
        return {
            "epochs_done": self.epochs_done,
            "batches_into_epoch": self.batches_this_epoch,  # 0 at an epoch's end
            "source": None if self.source is None else _encode(self.source.state_dict()),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the subset, generators and importance, and prepare the epoch the fit continues with:
        Lightning restores its own epoch counter only after ``on_fit_start``, and sets up the data right
        after it, so this is the last moment to choose that epoch's subset."""
        into = state_dict.get("batches_into_epoch", 0)
        if into:
            raise InputError(
                f"this checkpoint was written {into} batch(es) into epoch {state_dict['epochs_done']}: "
                "DataCullCallback resumes from the end of an epoch only (its subset's position inside an epoch is "
                "not saved); resume from an end-of-epoch checkpoint (ModelCheckpoint's default)"
            )
        self.epochs_done = state_dict["epochs_done"]
        for logger in self.loggers.values():  # this fit's earlier epochs are its own, later ones are replayed
            logger.continue_run(self.epochs_done - 1)
        if self.source is not None and state_dict["source"] is not None:
            self.source.load_state_dict(_decode(state_dict["source"]))
            self.source.prepare(self.epochs_done)
        self._restored = True


def _encode(state: Any) -> Any:
    """Numpy values as tensors, nested dicts included, so Lightning checkpoints load with
    ``torch.load(weights_only=True)``."""
    if not isinstance(state, dict):
        return state
    encoded = {}
    for key, value in state.items():
        if isinstance(value, dict):
            value = _encode(value)
        elif isinstance(value, ImportanceScores):
            class_loss = None if value.class_loss is None else torch.from_numpy(np.array(value.class_loss))
            value = ("__scores__", torch.from_numpy(np.array(value)), value.higher_is_harder, class_loss)
        elif isinstance(value, np.ndarray):
            value = ("__numpy__", torch.from_numpy(np.array(value)), None, None)
        encoded[key] = value
    return encoded


def _decode(state: Any) -> Any:
    if not isinstance(state, dict):
        return state
    decoded = {}
    for key, value in state.items():
        if isinstance(value, dict):
            value = _decode(value)
        elif isinstance(value, tuple) and len(value) == 4 and value[0] in ("__scores__", "__numpy__"):
            kind, array, direction, class_loss = value
            class_loss = None if class_loss is None else class_loss.numpy()
            value = (
                ImportanceScores(array.numpy(), direction, class_loss)
                if kind == "__scores__"
                else array.numpy()
            )
        decoded[key] = value
    return decoded
