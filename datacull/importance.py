"""DCImportance: turns a logged trajectory into one score per sample, and says which way the score points."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .data import discover_targets
from .errors import InputError
from .legacy import describe_unreadable
from .logger import METRIC_NDIM, DCLogger, check_metric_shape, load_epoch


class ImportanceScores(np.ndarray):
    """A float64 score array that remembers which way it points.

    ``higher_is_harder`` is True when a larger score marks a harder / more informative sample (worth
    keeping), False when it marks an easier one, None when the scores carry no order (all equal). Ranking
    samplers read it, so any importance can drive any sampler without the user knowing the convention.
    ``class_loss`` optionally carries one aggregated loss per class (RCAP's), for class-aware samplers.
    """

    higher_is_harder: bool | None
    class_loss: np.ndarray | None

    def __new__(cls, values: Any, higher_is_harder: bool | None, class_loss: Any = None):
        array = np.asarray(
            values.detach().cpu().double() if isinstance(values, torch.Tensor) else values, dtype=np.float64
        )
        scores = array.view(cls)
        scores.higher_is_harder = higher_is_harder
        scores.class_loss = None if class_loss is None else np.asarray(class_loss, dtype=np.float64)
        return scores

    def __array_finalize__(self, source: Any) -> None:
        self.higher_is_harder = getattr(source, "higher_is_harder", None)
        self.class_loss = getattr(source, "class_loss", None)

    def __reduce__(self):  # keep the direction through pickling (checkpoints, multiprocessing)
        constructor, arguments, state = super().__reduce__()
        return constructor, arguments, (state, self.higher_is_harder, self.class_loss)

    def __setstate__(self, state):
        array_state, self.higher_is_harder, self.class_loss = state
        super().__setstate__(array_state)


def fill_unseen(scores: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """``scores`` where ``seen``; samples never seen get the mean score of the others (or 0 if none was
    seen), a neutral value that neither keeps nor drops them first."""
    fill = scores[seen].mean() if seen.any() else torch.zeros((), dtype=scores.dtype)
    return torch.where(seen, scores, fill)


def mean_where_seen(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``total / count`` per sample; samples never seen are neutral (see :func:`fill_unseen`)."""
    return fill_unseen(total / count.clamp_min(1), count > 0)


def _per_sample(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A ``(N,)`` mask shaped to broadcast against ``(N, *)`` values."""
    return mask.reshape(-1, *([1] * (values.dim() - 1)))


class DCImportance:
    """Base class: reads windows of a :class:`DCLogger` trajectory; subclasses implement ``compute_importance``.

    Class attributes a subclass sets:

    - ``higher_is_harder``: which way its scores point (see :class:`ImportanceScores`).
    - ``requires``: the logged metrics it reads, by name (``"logits"``, ``"loss"``, ``"feature_norm"``). The
      first is read through ``logger_object``, the others through ``<metric>_logger``; the runner logs exactly
      these.
    - :meth:`is_online`: whether, configured with some parameters, it is updated from the run's own recent
      epochs (dynamic pruning, e.g. RCAP) rather than scoring a full-data scoring run once (static, e.g. AUM);
      an instance says so in ``online``.
    - ``paper``: the reference it follows (``docs/methods.md`` has the details).

    ``flush=True`` deletes the epoch files it has read (dynamic methods never re-read an epoch).
    """

    higher_is_harder: ClassVar[bool | None] = None
    requires: ClassVar[tuple[str, ...]] = ("logits",)
    #: Whether it can read a reduced store (``reduced=True``: its logger holds :meth:`reduce_logits` per epoch).
    reducible: ClassVar[bool] = False
    paper: ClassVar[str] = ""
    #: Attributes that ``state_dict`` saves, so an online importance resumes exactly.
    state_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dataset: Any, window_size: int, logger_object: DCLogger | None, flush: bool = False):
        if int(window_size) < 1:
            raise ValueError(f"window_size must be >= 1; got {window_size}")
        self.dataset = dataset
        self.num_samples = len(dataset)
        self.window_size = int(window_size)
        self.logger = logger_object  # None only for importances that read nothing (``requires = ()``)
        self.trajectory_dir = None if logger_object is None else logger_object.trajectory_dir
        self.offset = 1 if logger_object is None else logger_object.save_every_k_epoch
        self.delete_read_epochs = bool(flush)
        self.reduced = (
            False  # whether the logger holds reduce_logits() of each epoch instead of the raw values
        )
        self.online = type(self).is_online()
        #: read at most the epochs below this one (None: every logged epoch); see :meth:`update_latest`
        self.trajectory_length: int | None = None
        self.sample_importance: ImportanceScores | None = None
        self.last_epoch_read = -1
        if logger_object is not None and self.expected_metric() is not None:
            logger_object.expected = self.expected_metric()

    def expected_metric(self) -> tuple[str, str, int] | None:
        """What its main logger must hold per sample, (name, metric, ndim), when the class declares ``requires``
        (a subclass that keeps the base's default is not held to it) and reads raw values (not a reduced store)."""
        declared = any("requires" in vars(cls) for cls in type(self).__mro__ if cls is not DCImportance)
        metric = self.requires[0] if self.requires else None
        if not declared or metric not in METRIC_NDIM or self.reduced:
            return None
        return type(self).__name__, metric, METRIC_NDIM[metric]

    @cached_property
    def targets(self) -> np.ndarray:
        return discover_targets(self.dataset)

    @cached_property
    def labels_tensor(self) -> torch.Tensor:
        """Class labels as an int64 tensor, for scores that compare predictions with labels."""
        return torch.from_numpy(np.ascontiguousarray(self.targets, dtype=np.int64))

    @classmethod
    def is_online(cls, **params: Any) -> bool:
        """Whether an instance configured with ``params`` is updated from the run's own recent epochs (False:
        it scores a scoring run once). Online importances, and ones with both modes (``loss``), override it."""
        return False

    def compute_importance(self) -> ImportanceScores:
        """One score per sample; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_importance()")

    def scores(self, values: Any, class_loss: Any = None) -> ImportanceScores:
        """Wrap ``values`` as this importance's scores (with its direction) and remember them."""
        self.sample_importance = ImportanceScores(values, self.higher_is_harder, class_loss)
        return self.sample_importance

    def segment_epochs(self, start_epoch: int) -> list[int]:
        """Logged epochs of the window that starts at ``start_epoch`` (stride ``save_every_k_epoch``)."""
        return list(range(int(start_epoch), int(start_epoch) + self.window_size, self.offset))

    def extract_trajectory_segment(self, start_epoch: int, return_seen: bool = False):
        """The logged values of epochs ``start_epoch .. start_epoch + window_size - 1`` (stride ``save_every_k_epoch``).

        Returns a float tensor of shape ``(window, N, *)`` with NaN where a sample was not seen, or with
        ``return_seen=True`` the pair ``(values, seen)`` where ``seen`` is a ``(window, N)`` bool tensor.
        With ``flush=True`` the files read are deleted (dynamic methods that never re-read an epoch).
        """
        values, seen = self.read_epochs(self.segment_epochs(start_epoch))
        return (values, seen) if return_seen else values

    def read_epochs(
        self, epochs: list[int], logger: DCLogger | None = None, out: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack the given logged epochs into ``(values, seen)`` tensors of shape ``(len(epochs), N, *)``.

        The memory-mapped files are copied once, into ``out`` when it is a float32 array of that shape (a loop
        over epochs reuses one buffer instead of faulting in fresh pages for every epoch)."""
        logger = logger or self.logger
        logger.flush_for_reading()
        loaded = [load_epoch(logger.trajectory_dir, epoch, self.num_samples) for epoch in epochs]
        expected = self.expected_metric() if logger is self.logger else None
        if expected is not None and loaded:
            where = f"{Path(logger.trajectory_dir) / f'epoch{epochs[0]}'} (its logger)"
            check_metric_shape(expected, loaded[0][0].shape, where)
        shape = (len(epochs), *loaded[0][0].shape)
        if out is None or out.shape != shape or out.dtype != np.float32:
            out = np.empty(shape, dtype=np.float32)
        for row, (epoch_values, _) in zip(out, loaded, strict=True):
            row[...] = epoch_values
        values = torch.from_numpy(out)
        seen = torch.from_numpy(np.stack([epoch_seen for _, epoch_seen in loaded]))
        if self.delete_read_epochs:  # under DDP once every rank has read them (DCLogger.release_epoch)
            for epoch in epochs:
                logger.release_epoch(epoch)
        return values, seen

    def trajectory_epochs(self, trajectory_length: int | None, logger: DCLogger | None = None) -> list[int]:
        """The logged epochs among the first ``trajectory_length`` (every ``save_every_k_epoch``-th); None: every
        epoch logged so far."""
        logger = logger or self.logger
        if trajectory_length is None:
            logged = logger.saved_epochs()
            if not logged:
                raise FileNotFoundError(
                    f"{type(self).__name__} found no logged epoch in {logger.trajectory_dir}"
                    + describe_unreadable(logger.trajectory_dir)
                )
            trajectory_length = logged[-1] + 1
        if int(trajectory_length) < 1:
            raise InputError(f"importance.trajectory_length must be >= 1 epoch; got {trajectory_length}")
        wanted = list(range(0, int(trajectory_length), logger.save_every_k_epoch))
        available = set(logger.saved_epochs())
        missing = [epoch for epoch in wanted if epoch not in available]
        if missing:
            raise FileNotFoundError(
                f"{type(self).__name__} needs epochs {wanted[0]}..{wanted[-1]} in {logger.trajectory_dir}; "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                + ("" if available else describe_unreadable(logger.trajectory_dir))
            )
        return wanted

    def trajectory_sums(
        self,
        trajectory_length: int,
        per_epoch: Callable[..., torch.Tensor],
        extra_loggers: Sequence[DCLogger] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample, the sum of ``per_epoch(values, *extra_values)`` over the first ``trajectory_length``
        logged epochs that trained it, and how many those were: ``(total, count)`` in float64.

        ``values`` is one epoch of ``logger_object`` (``(N, *)``, NaN replaced by 0); ``extra_values`` are the
        same epoch of each of ``extra_loggers``. ``per_epoch`` returns ``(N,)`` or ``(N, k)`` and may overwrite
        ``values`` (a buffer refilled every epoch). A loop over epochs, vectorized over samples; only one epoch
        is in memory at a time.
        """
        total = torch.zeros((), dtype=torch.float64)
        count = torch.zeros(self.num_samples, dtype=torch.float64)
        epochs = self.trajectory_epochs(trajectory_length)
        for epoch, (values, seen) in zip(epochs, self.epoch_values(epochs), strict=True):
            extra = [self.read_epochs([epoch], logger)[0][0].nan_to_num_() for logger in extra_loggers]
            per_sample = per_epoch(values, *extra).double()
            total = total + torch.where(_per_sample(seen, per_sample), per_sample, 0.0)
            count += seen
        return total, count

    def epoch_values(self, epochs: Sequence[int]):
        """Per epoch, what this importance keeps of it and which samples it trained: the logged epoch reduced by
        :meth:`reduce_logits` (NaN replaced by 0), or the stored reduction itself when the logger holds reduced
        epochs (``reduced=True``). One epoch in memory at a time; consume each before the next."""
        buffer = None
        for epoch in epochs:
            values, seen = self.read_epochs([epoch], out=buffer)
            buffer = values.numpy()
            values = values[0].nan_to_num_()
            yield (values if self.reduced else self.reduce_logits(values, self.labels_tensor)), seen[0]

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What this importance keeps of one epoch of logged values: ``(N,)`` or ``(N, k)`` per-sample numbers
        (the identity for importances that read no logits). A reduced store writes this instead of the logits."""
        return logits

    def epoch_reducer(self) -> EpochReducer:
        """The reduction a :class:`DCLogger` applies before writing an epoch (``DCLogger(..., reducer=...)``), so
        that the trajectory holds a few numbers per sample and epoch instead of all the logits."""
        return EpochReducer(self.reduce_logits, self.labels_tensor)

    @classmethod
    def reducer_key(cls, **params: Any) -> str:
        """Identifies :meth:`reduce_logits` configured with ``params`` in a scoring cache key."""
        return cls.__name__

    def trajectory_mean(
        self,
        trajectory_length: int,
        per_epoch: Callable[..., torch.Tensor],
        extra_loggers: Sequence[DCLogger] = (),
    ) -> torch.Tensor:
        """The mean of ``per_epoch`` over the epochs that trained each sample (see :meth:`trajectory_sums`);
        samples never trained are neutral (:func:`fill_unseen`)."""
        return mean_where_seen(*self.trajectory_sums(trajectory_length, per_epoch, extra_loggers))

    def latest_values(self, epochs: Sequence[int], latest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``latest`` overwritten, epoch by epoch in order, with each sample's value wherever that epoch
        trained it; returns it with the mask of samples trained in any of ``epochs``."""
        ever_seen = torch.zeros(self.num_samples, dtype=torch.bool)
        for epoch in epochs:
            values, seen = self.read_epochs([epoch])
            latest = torch.where(_per_sample(seen[0], latest), values[0].to(latest.dtype), latest)
            ever_seen |= seen[0]
        return latest, ever_seen

    def update_latest(self, latest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``latest`` brought up to date with every logged epoch not read yet (online importances call it
        once per resample; a sample not trained since keeps its value), and the mask of samples trained in
        those epochs. Remembers the last epoch read. With ``trajectory_length`` set (an online importance
        scoring a scoring run under a static sampler) only the epochs below it are read."""
        limit = self.trajectory_length
        # online: only the epochs the run's own logger wrote; scoring a scoring run (limit set): its first epochs
        logged = self.logger.own_epochs() if limit is None else self.logger.saved_epochs()
        unread = [
            epoch for epoch in logged if epoch > self.last_epoch_read and (limit is None or epoch < limit)
        ]
        latest, trained = self.latest_values(unread, latest)
        self.last_epoch_read = max(unread, default=self.last_epoch_read)
        return latest, trained

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("sample_importance", *self.state_attributes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class EpochReducer:
    """For a :class:`DCLogger`: ``batch(epoch, index, values)`` reduces a batch's logged values per sample (with the
    samples' labels) before they are buffered, so a reduced store never holds an epoch of logits. Stateless here;
    a reduction that compares epochs keeps state (``state_dict``)."""

    def __init__(
        self, reduce_logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], labels: torch.Tensor
    ):
        self.reduce_logits = reduce_logits
        self.labels = labels

    def batch(self, epoch: int, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        labels = self.labels.to(values.device)[index.to(values.device)]
        return self.reduce_logits(values.float().nan_to_num(), labels).float()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class TrajectoryImportance(DCImportance):
    """Base of the static scores read from the first ``trajectory_length`` epochs of a (scoring) trajectory
    (None: every logged epoch; the runner passes the scoring run's length). ``reduced=True``: the logger holds
    :meth:`reduce_logits` of each epoch instead of the logits (a reduced store)."""

    reducible = True

    def __init__(
        self, dataset: Any, trajectory_length: int | None, logger_object: DCLogger, reduced: bool = False
    ):
        super().__init__(dataset=dataset, window_size=1, logger_object=logger_object, flush=False)
        self.trajectory_length = None if trajectory_length is None else int(trajectory_length)
        self.reduced = bool(reduced)
