"""The scoring run of static methods, cached by everything that changes its trajectory.

A scoring run trains a model on the full training split and logs every per-sample metric an importance
may need (loss, logits, embedding norm) for every epoch, then measures per-class accuracy on the
validation split (for MetriQ). Caching the trajectory rather than one method's scores lets every
trajectory-based importance (AUM, TDDS, EL2N, forgetting, ...) reuse one scoring run, and a multirun over
pruning rates train the scoring model once.

Cache entries are folders written under a temporary name and renamed into place; a per-key file lock makes
concurrent jobs that need the same entry wait for the first one instead of training twice. Every file's
SHA-1 is recorded in ``meta.json`` and checked on use: a truncated or corrupt entry is discarded and
recomputed, never silently used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from .datasets import ImageData
from .distributed import SINGLE, DistContext, barrier, broadcast_object
from .engine import Engine
from .logger import DCLogger
from .outputs import atomic_write_json

log = logging.getLogger("datacull")

SCORING_METRICS = ("loss", "logits", "feature_norm")
CACHE_FORMAT = 1


@dataclass
class ScoringRun:
    directory: Path
    epochs: int
    cost_samples: int
    wall_time_s: float
    cache_hit: bool
    val_class_acc: list[float] | None

    def logger(self, metric: str) -> DCLogger:
        return DCLogger(self.directory / metric)


def _sha1_file(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(data: ImageData) -> str:
    digest = hashlib.sha1()
    for tensor in (data.train_x, data.train_y):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def scoring_key(cfg: Any, data: ImageData, epochs: int, device: torch.device) -> str:
    """Hash of everything that changes the scoring trajectory (and nothing that does not, e.g. the sampler)."""
    trainer = cfg.trainer
    relevant = {
        "format": CACHE_FORMAT,
        "metrics": SCORING_METRICS,
        "data": data_fingerprint(data),
        "dataset_augment": OmegaConf.to_container(cfg.dataset.get("augment", {}) or {}, resolve=True),
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "optimizer": OmegaConf.to_container(cfg.optimizer, resolve=True),
        "scheduler": OmegaConf.to_container(cfg.scheduler, resolve=True),
        "batch_size": int(trainer.batch_size),
        "amp": bool(trainer.get("amp", False)) and device.type == "cuda",
        "device": device.type,
        "epochs": int(epochs),
        "seed": int(cfg.seed),
    }
    return hashlib.sha1(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:24]


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
        for relative, checksum in meta["files"].items():
            if _sha1_file(entry / relative) != checksum:
                raise ValueError(f"{relative} does not match its checksum")
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("scoring cache entry %s is damaged (%s): recomputing it", entry, error)
        return None
    return meta


def _train_scoring_model(
    cfg: Any, data: ImageData, device: torch.device, epochs: int, directory: Path, context: DistContext
) -> list[float] | None:
    seed = int(cfg.seed)
    engine = Engine(cfg, data, device, epochs=epochs, seed=seed, context=context)
    num_samples = int(data.train_y.shape[0])
    loggers = {
        metric: DCLogger(directory / metric, num_samples=num_samples, distributed=True)
        for metric in SCORING_METRICS
    }
    order_generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(num_samples, generator=order_generator)
        stats = engine.train_epoch(epoch, order, loggers=loggers)
        for logger in loggers.values():
            logger.flush()
        log.info("scoring epoch %d/%d  loss %.4f  acc %.4f", epoch + 1, epochs, stats.loss, stats.accuracy)
    if "val" not in engine.eval_sets:
        return None
    return engine.evaluate("val").per_class


def obtain_scoring_run(
    cfg: Any,
    data: ImageData,
    device: torch.device,
    epochs: int,
    cache_dir: Path,
    context: DistContext = SINGLE,
) -> ScoringRun:
    """The cached scoring run for this configuration, training it first if no valid entry exists.

    Under DDP rank 0 alone looks up, locks and writes the entry; every rank trains the scoring model.
    """
    key = scoring_key(cfg, data, epochs, device)
    root = Path(cache_dir) / "scoring"
    entry = root / key
    with file_lock(root / f"{key}.lock") if context.is_main else contextlib.nullcontext():
        meta = broadcast_object(context, _read_valid_entry(entry) if context.is_main else None)
        if meta is not None:
            log.info(
                "scoring cache hit: %s (saved %d samples, %.1f s of training)",
                entry,
                meta["cost_samples"],
                meta["wall_time_s"],
            )
            return ScoringRun(
                entry, epochs, meta["cost_samples"], meta["wall_time_s"], True, meta["val_class_acc"]
            )
        if context.is_main and entry.exists():
            shutil.rmtree(entry)
        log.info(
            "scoring run: training on all %d samples for %d epochs (cache key %s)",
            int(data.train_y.shape[0]),
            epochs,
            key,
        )
        staging = broadcast_object(context, root / f".tmp-{key}-{uuid.uuid4().hex[:8]}")
        cost = epochs * int(data.train_y.shape[0])
        try:
            start = time.perf_counter()
            val_class_acc = _train_scoring_model(cfg, data, device, epochs, staging, context)
            wall = time.perf_counter() - start
            if context.is_main:
                files = {
                    str(path.relative_to(staging)): _sha1_file(path)
                    for path in sorted(staging.rglob("*.npy"))
                }
                meta = {
                    "key": key,
                    "epochs": epochs,
                    "cost_samples": cost,
                    "wall_time_s": wall,
                    "val_class_acc": val_class_acc,
                    "files": files,
                }
                atomic_write_json(staging / "meta.json", meta)
                try:
                    os.replace(staging, entry)
                except OSError:  # another job wrote it first (without a working lock): keep a valid one
                    if _read_valid_entry(entry) is None:
                        raise
        finally:
            if context.is_main and staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        barrier(context)
    return ScoringRun(entry, epochs, cost, wall, False, val_class_acc)
