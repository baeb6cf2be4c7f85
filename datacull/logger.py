"""DCLogger: per-sample metrics, one dense binary array per logged epoch.

The original package appended one JSON line per sample. Here a batch's tensors are kept as they are (on
their device, no host sync) until the epoch changes or :meth:`DCLogger.flush` is called; then the epoch
is scattered into a dense ``(N, *)`` array in one step and written as ``.npy`` (values, NaN where unseen)
beside a boolean ``seen`` mask, both through a temporary file and an atomic rename. Readers memory-map the
files, so loading an epoch costs no parsing.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import weakref
from pathlib import Path

import numpy as np
import torch

from .deprecated import renamed
from .distributed import (
    DistContext,
    barrier,
    collective_device,
    gather_objects,
    gather_rows,
    process_group,
)
from .errors import TrajectoryError
from .outputs import atomic_save_npy

_EPOCH_FILE = re.compile(r"^epoch(\d+)\.npy$")
log = logging.getLogger("datacull")


def epoch_paths(trajectory_dir: str | os.PathLike, epoch: int) -> tuple[Path, Path]:
    base = Path(trajectory_dir)
    return base / f"epoch{epoch}.npy", base / f"epoch{epoch}.seen.npy"


def saved_epochs(trajectory_dir: str | os.PathLike) -> list[int]:
    """Epochs with a values file in ``trajectory_dir``, ascending. DataCull 1.0.2's ``epochN.jsonl`` files there
    are converted to values files first (once; the originals stay: :func:`datacull.legacy.convert_folder`)."""
    directory = Path(trajectory_dir)
    if not directory.is_dir():
        return []
    names = [entry.name for entry in os.scandir(directory)]
    if any(name.endswith(".jsonl") for name in names):
        from .legacy import convert_folder

        if convert_folder(directory):
            names = [entry.name for entry in os.scandir(directory)]
    found = (_EPOCH_FILE.match(name) for name in names)
    return sorted(int(match.group(1)) for match in found if match)


def _read_epoch(trajectory_dir: str | os.PathLike, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    values_path, seen_path = epoch_paths(trajectory_dir, epoch)
    for path in (values_path, seen_path):
        if not path.exists():
            raise TrajectoryError(
                f"trajectory file missing: {path} (epoch {epoch} was not logged or not flushed)"
            )
    try:
        values = np.load(values_path, mmap_mode="r")
        seen = np.load(seen_path)
    except (ValueError, OSError, EOFError) as error:
        raise TrajectoryError(f"trajectory file is truncated or corrupt: {values_path}: {error}") from None
    if seen.dtype != np.bool_ or seen.ndim != 1 or values.shape[:1] != seen.shape:
        raise TrajectoryError(
            f"trajectory files disagree for epoch {epoch} in {values_path.parent}: values {values.shape}, seen {seen.shape}"
        )
    return values, seen


def load_epoch(
    trajectory_dir: str | os.PathLike, epoch: int, num_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(values, seen)`` of one logged epoch, padded with unseen rows up to ``num_samples``.

    Values are memory-mapped when no padding is needed. Raises :class:`TrajectoryError` naming the file
    when it is missing, truncated, or holds indices beyond ``num_samples``.
    """
    values, seen = _read_epoch(trajectory_dir, epoch)
    rows = seen.shape[0]
    if rows > num_samples:
        raise TrajectoryError(
            f"epoch {epoch} in {trajectory_dir} holds {rows} samples but the dataset has {num_samples}: "
            "was it logged for another dataset?"
        )
    if rows < num_samples:
        padded = np.full((num_samples, *values.shape[1:]), np.nan, dtype=values.dtype)
        padded[:rows] = values
        values = padded
        seen = np.concatenate([seen, np.zeros(num_samples - rows, dtype=bool)])
    return values, seen


#: How many numbers per sample each logged metric has: one (a loss) or a row (the logits), as ``ndim`` of a batch.
METRIC_NDIM = {"loss": 1, "feature_norm": 1, "logits": 2}


def check_metric_shape(expected: tuple[str, str, int], shape: tuple[int, ...], where: str) -> None:
    """A one-line error when what was logged is not the metric an importance reads: ``expected`` is (the
    importance's name, the metric, its ndim), ``shape`` a logged batch's (or an epoch's) shape."""
    name, metric, ndim = expected
    per_sample = "one number per sample" if len(shape) == 1 else f"{shape[1:]} values per sample"
    if len(shape) == ndim and (ndim == 1 or shape[1] > 1):
        return
    if ndim == 1:
        raise TrajectoryError(
            f"{name} reads the per-sample {metric} (one number per sample, shape (B,)), but {where} got "
            f"{per_sample}, shape {shape}: log cross_entropy(logits, y, reduction='none') there, not the logits"
        )
    raise TrajectoryError(
        f"{name} reads the logits (C class scores per sample, shape (B, C)), but {where} got {per_sample}, "
        f"shape {shape}: log the model's output (logits) there, not the loss"
    )


_LIVE_LOGGERS: weakref.WeakSet = weakref.WeakSet()
#: The live logger that started the latest run in each trajectory folder of this process: a logger whose folder
#: another one has taken over since must not write on (the two runs' epochs would mix, silently).
_FOLDER_RUNS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


@atexit.register
def _flush_live_loggers() -> None:
    for logger in list(_LIVE_LOGGERS):
        if not logger.distributed:  # a collective at exit would wait for ranks that may be gone
            logger.flush()


class DCLogger:
    """Records a per-sample metric (loss, logits, anything tensor-shaped) for the samples of each batch.

    ``log_metric(epoch, sample_idx, metric)`` only keeps references to the batch's tensors; nothing is
    copied to the host until the epoch is written. Epochs not divisible by ``save_every_k_epoch`` are skipped.
    An epoch where only a subset was trained records exactly which samples were seen. Pass ``num_samples``
    when known; otherwise arrays end at the largest logged index and readers pad them.

    Under ``torch.distributed`` (a process group of several ranks initialised when it first logs or writes;
    ``distributed=False`` opts out, and each rank then needs its own folder) every rank logs its own batches, and
    writing an epoch merges them: every rank takes part, rank 0 writes the whole epoch, and every rank returns once
    it is written, so that each can read the merged epoch (from a folder every rank sees). That happens at the
    epoch's end (:meth:`flush`), or when an importance first reads, on every rank at the same point of the loop.
    Epochs an importance reads with ``flush=True`` are deleted by rank 0 at the next write, when every rank is
    done reading them.

    A logger never mixes two runs: when it first logs into a folder that holds epochs it did not write, it deletes
    them and says so, and :meth:`own_epochs` (what online importances read) lists only the epochs of its own run.
    A resumed run keeps its earlier epochs with :meth:`continue_run`.
    """

    def __init__(
        self,
        trajectory_dir: str | os.PathLike,
        save_every_k_epoch: int = 1,
        *,
        num_samples: int | None = None,
        dtype: torch.dtype = torch.float32,
        distributed: bool = True,
        reducer=None,
        reduce=None,
    ):
        if int(save_every_k_epoch) < 1:
            raise ValueError(f"save_every_k_epoch must be >= 1; got {save_every_k_epoch}")
        self.trajectory_dir = str(trajectory_dir)
        self.save_every_k_epoch = int(save_every_k_epoch)
        self.num_samples = num_samples
        self.dtype = dtype
        self.use_process_group = bool(distributed)  # merge the ranks of a process group (``distributed=``)
        self._context: DistContext | None = None  # fixed when it first logs (see ``context``)
        # epochs read with flush=True, deleted by rank 0 at the next write
        self._read_by_all: set[int] = set()
        #: a reduced store: ``reducer.batch(epoch, index, values)`` turns each logged batch into the few numbers per
        #: sample an importance keeps (``importance.epoch_reducer()``); a NaN reduction counts as unseen.
        #: ``reduce=`` is its old name.
        self.reducer = renamed(
            "DCLogger", "reduce", reduce, "reducer", reducer, concept="what a reduced store keeps of an epoch"
        )
        self._epoch: int | None = None
        self._indices: list[torch.Tensor] = []
        self._values: list[torch.Tensor] = []
        self._written_this_session: set[int] = set()
        self._adopted: set[int] = set()  # epochs of this run written before a resume
        self._checked_folder = False
        #: what the importance reading this logger expects per sample, set by it: (its name, metric, ndim)
        self.expected: tuple[str, str, int] | None = None
        self._legacy_adopted: set[int] = set()
        self._adopt_legacy_epochs()
        _LIVE_LOGGERS.add(self)

    @property
    def context(self) -> DistContext:
        """The ranks this logger merges: the process group it first logged under (one destroyed before the process
        ends does not change it), until then the current one."""
        return self._context or process_group(self.use_process_group)

    @property
    def distributed(self) -> bool:
        return self.context.enabled

    @property
    def _reduce_after_gather(self) -> bool:
        # under DDP a sample trains on another rank from epoch to epoch: a reduction that compares epochs (TDDS)
        # runs on rank 0 after the gather instead of on each rank's batches
        return self.distributed and getattr(self.reducer, "compares_epochs", False)

    def _adopt_legacy_epochs(self) -> None:
        """A folder DataCull 1.0.2 wrote (``epochN.jsonl``) is input to read, not another run of this package to
        clear: its epochs are converted and count as this logger's own, so online importances (RCAP) read them."""
        from .legacy import converted_epochs, legacy_epochs

        directory = Path(self.trajectory_dir)
        if not legacy_epochs(directory):
            return
        available = set(saved_epochs(directory))  # converts what is not converted yet
        adopted = sorted(converted_epochs(directory) & available)
        if adopted:  # until this logger writes: then they are another run's, cleared like any other
            self._adopted.update(adopted)
            self._legacy_adopted = set(adopted)
            log.info(
                "%s: reading %d epoch(s) written by DataCull 1.0.2 (converted to .npy; the .jsonl files stay)",
                directory,
                len(adopted),
            )

    def log_metric(self, epoch: int, sample_idx: torch.Tensor, metric: torch.Tensor) -> None:
        """Buffer one batch: ``sample_idx`` (B,) dataset indices, ``metric`` (B, *) values."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"log_metric: epoch must be an integer >= 0; got {epoch!r}")
        epoch = int(epoch)
        if epoch % self.save_every_k_epoch:
            return
        sample_idx = torch.as_tensor(sample_idx)
        if sample_idx.is_floating_point() or sample_idx.is_complex() or sample_idx.dtype == torch.bool:
            raise ValueError(
                f"log_metric: sample_idx must hold integer dataset indices (the index DCDataset appends); got "
                f"{sample_idx.dtype}"
            )
        metric = torch.as_tensor(metric)
        if sample_idx.ndim != 1 or metric.ndim < 1 or metric.shape[0] != sample_idx.shape[0]:
            raise ValueError(
                f"log_metric: sample_idx must be (B,) and metric (B, ...); got {tuple(sample_idx.shape)} and {tuple(metric.shape)}"
            )
        if self._context is None:
            self._context = self.context
        if self.expected is not None and self.reducer is None and not self._values:
            check_metric_shape(self.expected, tuple(metric.shape), self.trajectory_dir)
        if self.reducer is not None and not self._reduce_after_gather:
            metric = self.reducer.batch(epoch, sample_idx, metric)
        if self._values and metric.shape[1:] != self._values[0].shape[1:]:
            raise ValueError(
                f"log_metric: metric shape {tuple(metric.shape[1:])} per sample differs from earlier batches' {tuple(self._values[0].shape[1:])}"
            )
        if not self._checked_folder:
            self._start_clean()
        if self._epoch is not None and epoch != self._epoch:
            self.flush()
        self._epoch = epoch
        # asynchronous only towards a GPU: a non-blocking GPU-to-CPU copy may still be running when read
        self._indices.append(sample_idx.detach().to(metric.device, non_blocking=metric.device.type == "cuda"))
        self._values.append(metric.detach())

    def flush(self) -> None:
        """Write the buffered epoch (merging with what this logger already wrote for it).

        Under DDP this is a collective: every rank calls it, rank 0 receives every rank's batches and writes the
        epoch, and every rank returns once it is written.
        """
        if not self.distributed:
            if self._epoch is not None and self._values:
                self._write()
            return
        epoch = self._gather_to_rank0()
        if epoch is not None and self.context.is_main:
            self._write()
        if epoch is not None:
            self._written_this_session.add(epoch)
        if self.context.is_main:  # every rank is in this collective, so done with what it read before
            for read in self._read_by_all:
                self.delete_epoch(read)
        self._read_by_all.clear()
        self.reset()
        barrier(self.context)

    def _write(self) -> None:
        epoch = self._epoch
        current = _FOLDER_RUNS.get(os.path.realpath(self.trajectory_dir))
        if current is not None and current is not self:
            raise TrajectoryError(
                f"{self.trajectory_dir}: another DCLogger has started a run in this folder since this one did; writing "
                f"epoch {epoch} would mix the two runs' epochs: give each live logger its own folder"
            )
        device = self._values[0].device
        indices = torch.cat(self._indices).long()
        values = torch.cat(self._values)
        if (
            self._reduce_after_gather
        ):  # a reduction across epochs needs every rank's samples: rank 0 applies it
            values = self.reducer.batch(epoch, indices, values)
        values = values.to(self.dtype)
        largest = int(indices.max())  # the one host sync of the epoch
        if indices.min() < 0 or (self.num_samples is not None and largest >= self.num_samples):
            raise ValueError(
                f"log_metric: sample indices must lie in [0, {self.num_samples}); epoch {epoch} logged {largest}"
            )
        rows = self.num_samples if self.num_samples is not None else largest + 1
        # an earlier flush in this session wrote part of this epoch: keep what it wrote
        previous = _read_epoch(self.trajectory_dir, epoch) if epoch in self._written_this_session else None
        if previous is not None:
            rows = max(rows, previous[1].shape[0])
        dense = torch.full((rows, *values.shape[1:]), float("nan"), dtype=self.dtype, device=device)
        seen = torch.zeros(rows, dtype=torch.bool, device=device)
        if previous is not None:
            old_rows = previous[1].shape[0]
            dense[:old_rows] = torch.from_numpy(np.array(previous[0])).to(device)
            seen[:old_rows] = torch.from_numpy(previous[1]).to(device)
        dense.index_copy_(0, indices, values)
        seen.index_fill_(0, indices, True)
        if (
            self.reducer is not None and dense.dim() == 1
        ):  # a reduction that is not defined (NaN) was not seen
            seen &= ~dense.isnan()
        values_path, seen_path = epoch_paths(
            self.trajectory_dir, epoch
        )  # the folder is made by the first write
        # Atomic but not fsynced: a killed run cannot tear these files, and the rarer OS crash leaves at worst
        # an empty or short file, which readers refuse (TrajectoryError) and scoring caches catch by checksum.
        # An fsync per epoch file was a quarter of the logging cost (BENCHMARKS.md).
        stored = dense.float() if dense.dtype == torch.bfloat16 else dense  # numpy has no bfloat16
        atomic_save_npy(values_path, stored.cpu().numpy(), durable=False)
        atomic_save_npy(seen_path, seen.cpu().numpy(), durable=False)
        self._written_this_session.add(epoch)
        self.reset()

    def _gather_to_rank0(self) -> int | None:
        """Move every rank's buffered batches to rank 0's buffer; the epoch they belong to, None if none logged."""
        context = self.context
        buffered = sum(int(index.numel()) for index in self._indices)
        width = tuple(self._values[0].shape[1:]) if self._values else None
        sent = gather_objects(context, (buffered, self._epoch if self._epoch is not None else -1, width))
        if sum(count for count, _, _ in sent) == 0:
            return None
        # decided from what every rank sent, so that all ranks raise together instead of one leaving the others
        # waiting in the next collective
        logged = [epoch for count, epoch, _ in sent if count]
        widths = {shape for count, _, shape in sent if count}
        if len(set(logged)) != 1 or len(widths) != 1:
            raise RuntimeError(
                f"DCLogger(distributed=True): every rank must log the same epoch and metric shape before flush; "
                f"got {[(epoch, shape) for _, epoch, shape in sent]} ({self.trajectory_dir})"
            )
        self._epoch, (width,) = logged[0], widths
        device = self._values[0].device if self._values else collective_device()  # NCCL refuses CPU tensors
        if not self._values:  # a rank with an empty shard still takes part, with no rows
            self._indices.append(torch.zeros(0, dtype=torch.long, device=device))
            self._values.append(torch.zeros((0, *width), dtype=self.dtype, device=device))
        counts = [count for count, _, _ in sent]
        indices = gather_rows(context, torch.cat(self._indices).to(device).long(), counts)
        values = gather_rows(context, torch.cat(self._values).to(self.dtype), counts)
        if context.is_main:
            self._indices[:] = [indices]
            self._values[:] = [values]
        return self._epoch

    def flush_for_reading(self) -> None:
        """Make what was logged readable. Under DDP only a rank holding unwritten batches writes (a collective):
        in the same loop on every rank, every rank holds them at the same point; a reader alone (the runner's
        rank 0 computing scores) holds none, so it never waits for the others."""
        if not self.distributed or self._values:
            self.flush()

    def release_epoch(self, epoch: int) -> None:
        """Delete an epoch that has been read: now in one process; under DDP at the next write, by rank 0, when
        every rank has read it."""
        if self.distributed:
            self._read_by_all.add(epoch)
        else:
            self.delete_epoch(epoch)

    def saved_epochs(self) -> list[int]:
        """Every epoch in the folder, whoever wrote it (a scoring run's trajectory is read this way)."""
        self.flush_for_reading()
        return saved_epochs(self.trajectory_dir)

    def own_epochs(self) -> list[int]:
        """The epochs this run wrote: in this process, or before a resume (:meth:`continue_run`)."""
        saved = self.saved_epochs()  # writes what is buffered first
        own = self._written_this_session | self._adopted
        return [epoch for epoch in saved if epoch in own]

    def continue_run(self, through_epoch: int) -> None:
        """Resume the run whose epochs are in the folder: keep those up to ``through_epoch`` (the last one
        checkpointed) as this run's, and delete later ones, which the resumed run trains again."""
        for epoch in saved_epochs(self.trajectory_dir):
            if epoch <= through_epoch:
                self._adopted.add(epoch)
            else:
                self.delete_epoch(epoch)
        self._checked_folder = True
        _FOLDER_RUNS[os.path.realpath(self.trajectory_dir)] = self

    def _start_clean(self) -> None:
        """Before the first write: delete epochs of another run left in the folder, saying so."""
        self._checked_folder = True
        _FOLDER_RUNS[os.path.realpath(self.trajectory_dir)] = self
        self._adopted -= self._legacy_adopted  # 1.0.2 epochs were input to read, not this run's
        self._legacy_adopted = set()
        stale = [epoch for epoch in saved_epochs(self.trajectory_dir) if epoch not in self._adopted]
        if stale and self.context.is_main:
            log.warning(
                "%s held epochs %s of another run: deleted them, this run starts clean "
                "(DCLogger.continue_run() keeps a resumed run's epochs)",
                self.trajectory_dir,
                ", ".join(map(str, stale[:5])) + (", ..." if len(stale) > 5 else ""),
            )
            for epoch in stale:
                self.delete_epoch(epoch)

    def load_epoch(self, epoch: int, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
        self.flush_for_reading()
        return load_epoch(self.trajectory_dir, epoch, num_samples)

    def delete_epoch(self, epoch: int) -> None:
        for path in epoch_paths(self.trajectory_dir, epoch):
            path.unlink(missing_ok=True)
        self._written_this_session.discard(epoch)
        self._adopted.discard(epoch)

    def reset(self) -> None:
        """Forget buffered, unwritten batches (e.g. of an epoch that is about to be replayed)."""
        self._epoch = None
        self._indices.clear()
        self._values.clear()
