"""Epoch observers: what watches a run without changing it (the progress display, TensorBoard).

Each takes the run's rows (:class:`~datacull.summary.EpochRow`) as they are made; :class:`Observers` opens and
closes them around the epoch loop. Only rank 0 observes under DDP.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import InputError
from .summary import METRIC_COLUMNS, EpochRow

log = logging.getLogger("datacull")

#: The metrics.csv columns written as TensorBoard scalars (``epoch`` is the step itself).
SCALARS = tuple(column for column in METRIC_COLUMNS if column != "epoch")


class ProgressDisplay:
    """tqdm bars over epochs and batches on a terminal (log lines routed around them); plain log lines otherwise.

    ``mode`` is ``trainer.progress``: auto (bars on a terminal), bar or log; ``epochs`` None for a step budget."""

    def __init__(self, mode: str, epochs: int | None):
        self.mode = mode
        self.epochs = epochs
        self.interactive = False
        self.epoch_bar = self.batch_bar = self._redirect = None

    def open(self, start_epoch: int, enabled: bool) -> None:
        self.interactive = enabled and (self.mode == "bar" or (self.mode == "auto" and sys.stderr.isatty()))
        if self.interactive:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
            self.epoch_bar = tqdm(
                total=self.epochs, initial=start_epoch, desc="epochs", position=0, dynamic_ncols=True
            )

    def batches(self, samples: int, batch_size: int, epoch: int):
        """A fresh batch bar for this epoch (None when not interactive)."""
        if not self.interactive:
            return None
        from tqdm import tqdm

        if self.batch_bar is not None:
            self.batch_bar.close()
        self.batch_bar = tqdm(
            total=max(1, math.ceil(samples / batch_size)),
            desc=f"epoch {epoch + 1}",
            position=1,
            leave=False,
            dynamic_ncols=True,
        )
        return self.batch_bar

    def epoch_done(self, row: EpochRow) -> None:
        test = (
            ""
            if row.test_acc is None
            else f"  test_acc {row.test_acc:.4f}  worst_class {row.worst_class_acc:.4f}"
        )
        log.info(
            "epoch %d/%s  loss %.4f  acc %.4f  subset %d%s  train %.2fs  eval %.2fs",
            row.epoch,
            self.epochs or "?",
            row.train_loss,
            row.train_acc,
            row.subset_size,
            test,
            row.train_time_s,
            row.eval_time_s,
        )
        if self.epoch_bar is not None:
            self.epoch_bar.update(1)

    def close(self, *exc_info: Any) -> None:
        for bar in (self.batch_bar, self.epoch_bar):
            if bar is not None:
                bar.close()
        if self._redirect is not None:
            self._redirect.__exit__(*exc_info)


class TensorBoardTracker:
    """``trainer.tensorboard=true``: each row's numeric columns as scalars (same names) at ``global_step = epoch``,
    in ``<run>/tensorboard``. A resumed run appends to the same folder and purges the events of the epochs after
    its checkpoint, so no epoch appears twice. Checks that tensorboard is importable when built (before training)."""

    def __init__(self, log_dir: Path | None):
        self.log_dir = log_dir
        self.writer = None
        if log_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise InputError(
                    "trainer.tensorboard=true needs the tensorboard package: pip install tensorboard "
                    "(or pip install 'datacull[tensorboard]')"
                ) from None
            self._writer_cls = SummaryWriter

    def open(self, start_epoch: int, enabled: bool) -> None:
        if self.log_dir is not None and enabled:
            # steps are metrics.csv's 1-based epochs: a run resumed after epoch k purges the steps above k
            self.writer = self._writer_cls(
                log_dir=str(self.log_dir), purge_step=start_epoch + 1 if start_epoch else None
            )

    def batches(self, samples: int, batch_size: int, epoch: int) -> None:
        return None

    def epoch_done(self, row: EpochRow) -> None:
        if self.writer is None:
            return
        values = asdict(row)
        for name in SCALARS:
            if values[name] is not None:
                self.writer.add_scalar(name, values[name], global_step=row.epoch)
        self.writer.flush()  # on disk before the checkpoint: a run killed later loses no checkpointed epoch

    def close(self, *exc_info: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Observers:
    """The run's observers as one context: opened before the first epoch, closed (flushed) however it ends."""

    def __init__(self, *observers: ProgressDisplay | TensorBoardTracker, enabled: bool = True):
        self.observers = observers
        self.enabled = enabled
        self.start_epoch = 0

    def starting_at(self, epoch: int) -> Observers:
        self.start_epoch = epoch
        return self

    def __enter__(self) -> Observers:
        for observer in self.observers:
            observer.open(self.start_epoch, self.enabled)
        return self

    def batches(self, samples: int, batch_size: int, epoch: int):
        """The progress bar of this epoch's batches, if any observer draws one."""
        bars = [observer.batches(samples, batch_size, epoch) for observer in self.observers]
        return next((bar for bar in bars if bar is not None), None)

    def epoch_done(self, row: EpochRow) -> None:
        for observer in self.observers:
            observer.epoch_done(row)

    def __exit__(self, *exc_info: Any) -> None:
        for observer in self.observers:
            observer.close(*exc_info)
