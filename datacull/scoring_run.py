"""The scoring run of static methods: the first epochs of a full-length run, cached and extended on demand.

A static importance reads the first T epochs of a training run on the full training split (TDDS, EL2N, forgetting
and the official CCS code all read the beginning of a 200-epoch run, whose learning rate is still near its peak
there). So the scoring run builds its schedule for ``scoring.epochs`` (by default the training run's length) and
trains only the epochs that are read. It logs every per-sample metric an importance may need (loss, logits,
embedding norm) and, when its data hold out a validation split (MetriQ's query run), the per-class validation
accuracy after every epoch.

Because epoch t of a run does not depend on how many epochs follow it, one cache entry serves every T: an entry
holds the epochs trained so far and the state after the last of them (model, optimizer, generators), and a request
for more epochs continues training from there, in place. Every trajectory importance (AUM, TDDS, EL2N, ...) and
every job of a sweep over pruning rates reuses one scoring run per seed. The key covers everything that changes the
trajectory (data, model, optimizer, schedule and its length, batch size, precision, device type, world size, seed)
and nothing that does not (the importance, the sampler, how many epochs are read).

Entries are written under a per-key file lock: a new one in a temporary folder renamed into place, an extension as
new epoch files first and ``meta.json`` (which lists every file with its SHA-1) last, so readers of the epochs
already listed are never disturbed. A truncated or corrupt entry is discarded and recomputed, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .datasets import ImageData
from .datasets.stream import StreamedSamples
from .distributed import SINGLE, DistContext, barrier, broadcast_object
from .engine import PER_SAMPLE_METRICS, Engine
from .logger import DCLogger
from .outputs import atomic_write_bytes, atomic_write_json
from .summary import ScoringCost

if TYPE_CHECKING:
    from .recipe import Recipe

log = logging.getLogger("datacull")

CACHE_FORMAT = 2
STATE_FILE = "state.pt"


@dataclass(frozen=True)
class ScoringRequest:
    """The first ``epochs`` epochs of a scoring run on ``data`` whose schedule is ``schedule_epochs`` long."""

    recipe: Recipe
    data: ImageData
    seed: int
    epochs: int
    schedule_epochs: int
    cache_dir: Path
    context: DistContext = SINGLE
    #: FLOPs per sample of the scoring model over those of the model trained: what a proxy's epoch costs
    cost_ratio: float = 1.0
    #: a reduced store: which reducer made it (``importance.reducer_key``, part of the cache key; the reducer
    #: itself is given to :func:`obtain_scoring_run`); None: the full store
    reducer_key: str | None = None
    #: what the scoring run logs: every per-sample metric (one trajectory for every importance), or a reduced
    #: store's few (what one importance reads)
    metrics: tuple[str, ...] = tuple(PER_SAMPLE_METRICS)

    @cached_property
    def key(self) -> str:
        """Hash of everything that changes the scoring trajectory (and nothing that does not: the sampler, the
        importance, how many epochs it reads)."""
        relevant = {
            "format": CACHE_FORMAT,
            "metrics": list(self.metrics),
            "data": data_fingerprint(self.data),
            **self.recipe.fingerprint(),
            "world_size": self.context.world_size,
            "store": self.reducer_key or "full",
            "schedule_epochs": self.schedule_epochs,
            "seed": self.seed,
        }
        return hashlib.sha1(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def cost_samples(self) -> int:
        """What reading ``epochs`` epochs costs, in samples of the model trained (a proxy's by its FLOPs ratio)."""
        return round(self.epochs * int(self.data.train_y.shape[0]) * self.cost_ratio)

    @property
    def directory(self) -> Path:
        """Where the cache entry lives (and what a static importance's loggers read)."""
        return Path(self.cache_dir) / "scoring" / self.key


@dataclass
class ScoringRun:
    """One run's view of a cache entry: ``epochs`` read of a schedule ``schedule_epochs`` long."""

    directory: Path
    epochs: int
    schedule_epochs: int
    cost_samples: (
        int  # what reading ``epochs`` epochs costs (in samples of the model trained), charged every time
    )
    trained_samples: int  # samples this process trained the scoring model on (0 on a cache hit)
    wall_time_s: float  # this process's training time
    #: what the epochs read took to train when the entry was made, cached or not (the entry's time, pro rata)
    cost_s: float
    cache_hit: bool
    model: str
    cost_ratio: float
    #: per epoch read, ``{"accuracy": overall, "per_class": [...]}`` on the validation split (empty without one)
    validation: list[dict[str, Any]]

    def logger(self, metric: str) -> DCLogger:
        return DCLogger(self.directory / metric)

    def cost(self) -> ScoringCost:
        """What reading it cost the run (its summary's ``scoring_*`` fields)."""
        return ScoringCost(
            samples=self.trained_samples,
            cost_samples=self.cost_samples,
            wall_time_s=self.wall_time_s,
            cost_s=self.cost_s,
            cache_hit=self.cache_hit,
            epochs=self.epochs,
            schedule_epochs=self.schedule_epochs,
            model=self.model,
            flops_ratio=self.cost_ratio,
        )

    def best_validation_class_accuracy(self) -> list[float] | None:
        """Per-class validation accuracy at the epoch with the best overall validation accuracy (MetriQ's
        official query rule), or None when the run held out no validation split."""
        if not self.validation:
            return None
        return max(self.validation, key=lambda epoch: epoch["accuracy"])["per_class"]


def _sha1_file(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(data: ImageData) -> str:
    """The training split's identity: its bytes, or for streamed data their signature (image files: their names,
    sizes and modification times; a data set of your own: its import path, arguments and code)."""
    digest = hashlib.sha1()
    for tensor in (data.train_x, data.train_y):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(
            tensor.signature.encode()
            if isinstance(tensor, StreamedSamples)
            else tensor.contiguous().numpy().tobytes()
        )
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock held for the block (a no-op where fcntl does not exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:  # e.g. a cluster filesystem mounted without lock support
            log.warning("cannot lock %s (%s): concurrent jobs may each compute this entry", path, error)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_valid_entry(entry: Path) -> dict[str, Any] | None:
    """The entry's metadata if every file it lists is present and intact, else None (with a warning)."""
    meta_path = entry / "meta.json"
    if not entry.is_dir():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"cache format {meta.get('format')}, expected {CACHE_FORMAT}")
        for relative, checksum in meta["files"].items():
            if _sha1_file(entry / relative) != checksum:
                raise ValueError(f"{relative} does not match its checksum")
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("scoring cache entry %s is damaged (%s): recomputing it", entry, error)
        return None
    return meta


def _train_scoring_epochs(
    request: ScoringRequest, epochs: range, directory: Path, reducer_factory: Callable[[], Any] | None
) -> list[dict[str, Any]]:
    """Train ``epochs`` of the scoring run into ``directory``, continuing from its saved state when the range does
    not start at 0; save the state after the last epoch. Returns each epoch's validation accuracies (empty when
    the data hold out no validation split)."""
    data, context, schedule_epochs = request.data, request.context, request.schedule_epochs
    engine = Engine(request.recipe, data, epochs=schedule_epochs, seed=request.seed, context=context)
    num_samples = int(data.train_y.shape[0])
    order_generator = torch.Generator().manual_seed(request.seed)
    reducer = reducer_factory() if reducer_factory is not None else None
    if epochs.start > 0:
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
        engine.load_state_dict(state["engine"])
        order_generator.set_state(state["order_generator"])
        if reducer is not None:
            reducer.load_state_dict(state["reducer"])
    loggers = {
        metric: DCLogger(
            directory / metric,
            num_samples=num_samples,
            distributed=True,
            reducer=reducer if metric == "logits" else None,
        )
        for metric in request.metrics
    }
    # The entry's earlier epochs are this run's: keep them (a new logger would start clean).
    if epochs.start > 0:
        for logger in loggers.values():
            logger.continue_run(epochs.start - 1)
    validation = []
    for epoch in epochs:
        order = torch.randperm(num_samples, generator=order_generator)
        stats = engine.train_epoch(epoch, order, loggers=loggers)
        for logger in loggers.values():
            logger.flush()
        if "val" in engine.eval_sets:
            evaluation = engine.evaluate("val")
            validation.append({"accuracy": evaluation.accuracy, "per_class": evaluation.per_class})
        log.info(
            "scoring epoch %d/%d (of a %d-epoch schedule)  loss %.4f  acc %.4f%s",
            epoch + 1,
            epochs.stop,
            schedule_epochs,
            stats.loss,
            stats.accuracy,
            f"  val_acc {validation[-1]['accuracy']:.4f}" if validation else "",
        )
    if context.is_main:
        buffer = io.BytesIO()
        torch.save(
            {
                "engine": engine.state_dict(),
                "order_generator": order_generator.get_state(),
                "reducer": None if reducer is None else reducer.state_dict(),
            },
            buffer,
        )
        atomic_write_bytes(directory / STATE_FILE, buffer.getvalue())
    del (
        engine
    )  # its model, optimizer and device copy of the data go now, before the run's own engine is built
    if request.recipe.device.type == "cuda":
        torch.cuda.empty_cache()
    return validation


def _write_meta(
    directory: Path, key: str, schedule_epochs: int, epochs: int, cost: int, wall: float, val
) -> dict:
    files = {
        str(path.relative_to(directory)): _sha1_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
        and path.name != "meta.json"
        and not path.name.startswith(".")
        and _listed(path.relative_to(directory), epochs)
    }
    meta = {
        "format": CACHE_FORMAT,
        "key": key,
        "schedule_epochs": schedule_epochs,
        "epochs_trained": epochs,
        "cost_samples_per_epoch": cost,
        "wall_time_s": wall,
        "validation": val,
        "files": files,
    }
    atomic_write_json(directory / "meta.json", meta)
    return meta


def _listed(relative: Path, epochs: int) -> bool:
    """Whether a file belongs to an entry of ``epochs`` trained epochs (leftovers of an interrupted extension
    beyond it do not)."""
    name = relative.name
    if not name.startswith("epoch"):
        return True
    return int(name[len("epoch") :].split(".")[0]) < epochs


def obtain_scoring_run(request: ScoringRequest, reducer: Callable[[], Any] | None = None) -> ScoringRun:
    """The first ``request.epochs`` epochs of the cached scoring run, training (or continuing) it first where the
    entry holds fewer. ``reducer`` builds what a reduced store keeps of each epoch's logits
    (``importance.epoch_reducer``).

    Under DDP rank 0 alone looks up, locks and writes the entry; every rank trains the scoring model.
    """
    key, entry, context = request.key, request.directory, request.context
    epochs, schedule_epochs = request.epochs, request.schedule_epochs
    root = entry.parent
    per_epoch = int(request.data.train_y.shape[0])
    cost = request.cost_samples
    model = request.recipe.model.name
    with file_lock(root / f"{key}.lock") if context.is_main else contextlib.nullcontext():
        meta = broadcast_object(context, _read_valid_entry(entry) if context.is_main else None)
        trained = 0 if meta is None else int(meta["epochs_trained"])
        if trained >= epochs:
            log.info(
                "scoring cache hit: %s (%d of %d epochs trained, %d read)",
                entry,
                trained,
                schedule_epochs,
                epochs,
            )
            val = meta["validation"][:epochs]
            cost_s = float(meta["wall_time_s"]) * epochs / max(trained, 1)
            return ScoringRun(
                entry, epochs, schedule_epochs, cost, 0, 0.0, cost_s, True, model, request.cost_ratio, val
            )
        if meta is None and context.is_main and entry.exists():
            shutil.rmtree(entry)
        extending = trained > 0
        log.info(
            "scoring run: training on all %d samples, epochs %d-%d of a %d-epoch schedule%s (cache key %s)",
            per_epoch,
            trained + 1,
            epochs,
            schedule_epochs,
            " (continuing the cached entry)" if extending else "",
            key,
        )
        directory = (
            entry if extending else broadcast_object(context, root / f".tmp-{key}-{uuid.uuid4().hex[:8]}")
        )
        try:
            start = time.perf_counter()
            val = (meta["validation"] if extending else []) + _train_scoring_epochs(
                request, range(trained, epochs), directory, reducer
            )
            wall = time.perf_counter() - start
            previous_wall = meta["wall_time_s"] if extending else 0.0
            if context.is_main:
                _write_meta(directory, key, schedule_epochs, epochs, per_epoch, previous_wall + wall, val)
                if not extending:
                    try:
                        os.replace(directory, entry)
                    except OSError:  # another job wrote it first (without a working lock): keep a valid one
                        if _read_valid_entry(entry) is None:
                            raise
        finally:
            if context.is_main and not extending and directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
        barrier(context)
    trained_now = (epochs - trained) * per_epoch
    cost_s = previous_wall + wall
    return ScoringRun(
        entry, epochs, schedule_epochs, cost, trained_now, wall, cost_s, False, model, request.cost_ratio, val
    )
