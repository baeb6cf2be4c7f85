"""Experiment tracking: ``trainer.tensorboard=true`` mirrors each ``metrics.csv`` row into TensorBoard.

The event files go to ``<run>/tensorboard``; each numeric column of the row is one scalar (same name as the
column) at ``global_step = epoch``. A resumed run appends to the same folder and purges the events of the epochs
after its checkpoint, so no epoch appears twice.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InputError

#: The metrics.csv columns written as scalars (``epoch`` is the step itself).
SCALARS = (
    "train_loss",
    "train_acc",
    "test_acc",
    "worst_class_acc",
    "subset_size",
    "lr",
    "train_time_s",
    "eval_time_s",
    "epoch_time_s",
)


class TensorBoardTracker:
    """Writes per-epoch metrics with torch's ``SummaryWriter``; does nothing when disabled (or off rank 0)."""

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

    @classmethod
    def from_config(cls, cfg: Any, run_dir: Path, enabled: bool = True) -> TensorBoardTracker:
        """Checks that tensorboard is importable now, so a missing package fails before any training."""
        wanted = enabled and bool(cfg.trainer.get("tensorboard", False))
        return cls(Path(run_dir) / "tensorboard" if wanted else None)

    @contextmanager
    def opened(self, start_epoch: int):
        """The writer for one training session, closed (flushed) on success and on failure alike."""
        if self.log_dir is None:
            yield self
            return
        self.writer = self._writer_cls(log_dir=str(self.log_dir), purge_step=start_epoch or None)
        try:
            yield self
        finally:
            self.writer.close()
            self.writer = None

    def log(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for name in SCALARS:
            if row.get(name) is not None:
                self.writer.add_scalar(name, row[name], global_step=row["epoch"])
        self.writer.flush()  # on disk before the checkpoint: a run killed later loses no checkpointed epoch
