"""``train(cfg)``: one configuration, start to finish (the module is not named ``train`` so that
``datacull.train`` stays the function), and ``resume(run_dir)``, which continues one from its checkpoint.

1. :func:`~datacull.parts.build_parts` resolves the config into objects and checks every setting.
2. The score source obtains what the loader chooses by: a cached scoring run, the first online scores, or nothing.
3. A fresh model trains epoch by epoch on the loader's subset; after every epoch the row goes to ``metrics.csv`` and
   the state to ``checkpoint.pt``.
4. ``summary.json`` and ``samples.csv`` record the result. Every file is written atomically.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from .distributed import SINGLE, DistContext
from .engine import Engine
from .errors import InputError
from .outputs import RunFolder, capture_rng, restore_rng
from .parts import RunParts, build_parts
from .plan import NONE
from .settings import TrainerSettings
from .summary import EpochRow, RunSummary, code_identity

log = logging.getLogger("datacull")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train(
    cfg: DictConfig, run_dir: str | Path | None = None, resume: bool = False, context: DistContext = SINGLE
) -> dict[str, Any]:
    """Run one configuration and write its run folder; returns the summary (also in ``summary.json``).

    Under DDP (``context`` from :func:`datacull.distributed.setup`) every rank calls this with rank 0's
    ``run_dir``; only rank 0 writes.
    """
    if run_dir is None:
        from hydra.core.hydra_config import HydraConfig

        run_dir = HydraConfig.get().runtime.output_dir
    folder = RunFolder(Path(run_dir), writable=context.is_main)
    checkpoint = folder.load_checkpoint() if resume else None
    settings = OmegaConf.to_container(cfg, resolve=True)
    if checkpoint is not None:
        refuse_changed_settings(folder, checkpoint.get("config"), settings)
    if not resume:
        folder.refuse_existing_run()
        folder.write_config(cfg)
    started = time.perf_counter() - (checkpoint["wall_time_s"] if checkpoint else 0.0)
    trainer = TrainerSettings.of(cfg.trainer)
    summary = RunSummary(
        status="running",
        importance=cfg.importance.name,
        sampler=cfg.sampler.name,
        pruning_rate=cfg.sampler.pruning_rate if isinstance(cfg.sampler.pruning_rate, int | float) else None,
        dataset=cfg.dataset.name,
        model=cfg.model.name,
        epochs=trainer.epochs,
        steps=trainer.steps,  # as given: settled once the run's parts are built
        budget=str(trainer.budget),
        seed=cfg.seed,
        run_dir=str(folder.path),
        world_size=context.world_size,
        started_at=checkpoint["started_at"] if checkpoint else _now(),
        code=code_identity(),
    )
    folder.write_summary(summary)
    try:
        parts = build_parts(cfg, folder.path, context)
        summary.pruning_rate, summary.uses_scores = parts.pruning_rate, parts.plan.mode != NONE
        summary.budget, summary.compute_budget = parts.budget.kind, parts.budget.compute
        summary.steps = parts.budget.steps
        summary.warnings = parts.warnings or None
        _run(parts, folder, checkpoint, summary, started, context, settings)
    except KeyboardInterrupt:
        summary.status, summary.error = "interrupted", "KeyboardInterrupt"
        summary.wall_time_s = time.perf_counter() - started
        folder.write_summary(summary)
        if folder.checkpoint_path.exists():
            log.warning("interrupted: continue it with `datacull resume %s`", folder.path)
        else:
            log.warning("interrupted before its first epoch ended: nothing to resume in %s", folder.path)
        raise
    except BaseException as error:
        summary.status, summary.error = "failed", f"{type(error).__name__}: {error}"
        summary.wall_time_s = time.perf_counter() - started
        folder.write_summary(summary)
        raise
    return summary.to_json()


def _run(
    parts: RunParts,
    folder: RunFolder,
    checkpoint: dict | None,
    summary: RunSummary,
    started: float,
    context: DistContext,
    settings: dict[str, Any],
) -> None:
    loader, source, budget = parts.loader, parts.source, parts.budget
    device = parts.recipe.device
    if checkpoint is not None and checkpoint.get("device_type", "cpu") != device.type:
        raise InputError(
            f"{folder.checkpoint_path} was written on {checkpoint.get('device_type', 'cpu')}; this resume would run on "
            f"{device.type}, where its random generators cannot continue: resume it with "
            f"trainer.device={checkpoint.get('device_type', 'cpu')}"
        )
    if checkpoint is None:
        source.start()
    else:
        source.load_state_dict(checkpoint["scores"])
        source.continue_run(checkpoint["epoch"])
    engine = Engine(parts.recipe, parts.data, budget.epochs, parts.seed, context, budget.steps)
    rows: list[EpochRow] = []
    times_selected = torch.zeros(parts.num_samples, dtype=torch.long)
    epoch = 0
    if checkpoint is not None:
        engine.load_state_dict(checkpoint["engine"])
        rows, times_selected = checkpoint["rows"], checkpoint["times_selected"]
        epoch = checkpoint["epoch"] + 1
        restore_rng(checkpoint["rng"], device)
        log.info("resuming %s at epoch %d", folder.path, epoch + 1)
    with parts.observers.starting_at(epoch) as observers:
        while not budget.done(epoch, engine.global_step):
            epoch_start = time.perf_counter()
            source.prepare(epoch)
            order = loader.sampler.epoch_order()
            trained = loader.trained_part(order, engine.batch_size)
            batches = observers.batches(len(trained), engine.batch_size, epoch)
            stats = engine.train_epoch(epoch, trained, loader.sample_weights, source.loggers, batches)
            times_selected += stats.trained
            train_time = time.perf_counter() - epoch_start
            last = budget.done(epoch + 1, engine.global_step)
            evaluation, eval_time = None, 0.0
            if (epoch + 1) % parts.eval_every == 0 or last:
                eval_start = time.perf_counter()
                evaluation = engine.evaluate("test")
                eval_time = time.perf_counter() - eval_start
                summary.per_class_acc = evaluation.per_class
            source.epoch_end(epoch, last)
            row = EpochRow(
                epoch=epoch + 1,
                train_loss=stats.loss,
                train_acc=stats.accuracy,
                test_acc=None if evaluation is None else evaluation.accuracy,
                worst_class_acc=None if evaluation is None else evaluation.worst_class,
                subset_size=int(order.numel()),
                steps=stats.steps,
                train_time_s=train_time,
                eval_time_s=eval_time,
                epoch_time_s=time.perf_counter() - epoch_start,
                lr=stats.lr,
                samples_trained=stats.samples,
            )
            rows.append(row)
            observers.epoch_done(row)
            folder.write_metrics(rows)
            folder.save_checkpoint(
                {
                    "epoch": epoch,
                    "engine": engine.state_dict(),
                    "scores": source.state_dict(),
                    "rows": rows,
                    "times_selected": times_selected,
                    "rng": capture_rng(device),
                    "device_type": device.type,
                    "wall_time_s": time.perf_counter() - started,
                    "started_at": summary.started_at,
                    "config": settings,  # what the run trained under: a resume refuses another
                }
            )
            epoch += 1
    _finish(parts, folder, summary, rows, times_selected, engine, started)


def _finish(
    parts: RunParts,
    folder: RunFolder,
    summary: RunSummary,
    rows: list[EpochRow],
    times_selected: torch.Tensor,
    engine: Engine,
    started: float,
) -> None:
    """Write the per-sample table and the completed summary; say in one line what the run spent."""
    scores = parts.source.scores
    final_scores = (
        np.asarray(scores, dtype=np.float64) if scores is not None else np.full(parts.num_samples, np.nan)
    )
    folder.write_samples(parts.data.train_y.numpy(), final_scores, times_selected.numpy())
    evaluated = [row for row in rows if row.test_acc is not None]
    samples_trained = int(sum(row.trained for row in rows))
    offered = int(sum(row.subset_size for row in rows))  # the passes' subsets, a step budget's last one whole
    full_data_samples = parts.budget.full_data_samples(parts.num_samples, engine.batch_size)
    scoring = parts.source.scoring_cost
    summary.class_wise_acc = _as_list(getattr(parts.loader, "class_wise_acc", None))
    summary.status = "completed"
    summary.test_acc = evaluated[-1].test_acc
    summary.best_test_acc = max(row.test_acc for row in evaluated)
    summary.worst_class_acc = evaluated[-1].worst_class_acc
    summary.samples_trained = samples_trained
    summary.scoring = scoring
    summary.full_data_samples = full_data_samples
    summary.realized_pruning_rate = 1.0 - offered / (len(rows) * parts.num_samples)
    summary.compute_saved = 1.0 - (samples_trained + scoring.cost_samples) / full_data_samples
    summary.num_train_samples = parts.num_samples
    summary.epochs_trained = len(rows)
    summary.steps_trained = engine.global_step
    summary.train_time_s = float(sum(row.train_time_s for row in rows))
    summary.eval_time_s = float(sum(row.eval_time_s for row in rows))
    summary.device = str(parts.recipe.device)
    summary.wall_time_s = time.perf_counter() - started
    summary.finished_at = _now()
    folder.write_summary(summary)
    scoring_runs = scoring.cost_samples / full_data_samples
    cached = " (from the cache)" if scoring.cache_hit else ""
    log.info(
        "done: test_acc %.4f  worst_class_acc %.4f  -> %s\n  compute: training %.2f + scoring run %.2f%s = %.2f "
        "full-data runs (compute_saved %.3f)",
        summary.test_acc,
        summary.worst_class_acc,
        folder.path,
        samples_trained / full_data_samples,
        scoring_runs,
        cached,
        1.0 - summary.compute_saved,
        summary.compute_saved,
    )


#: Settings a resume may change: where files go and how progress is shown, nothing that changes a result.
RESUMABLE_CHANGES = (
    "output_dir",
    "cache_dir",
    "trainer.progress",
    "trainer.num_threads",
    "trainer.tensorboard",
)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def refuse_changed_settings(folder: RunFolder, trained_under: dict | None, now: dict[str, Any]) -> None:
    """A resume continues the run it resumes: a ``config.yaml`` edited since the checkpoint (another pruning rate,
    learning rate, ...) would train the rest of the run under other settings than its summary names."""
    if trained_under is None:  # a checkpoint written before checkpoints held their config
        log.warning(
            "%s holds no config to compare config.yaml with; resuming as it says", folder.checkpoint_path
        )
        return
    before, after = _flatten(trained_under), _flatten(now)
    changed = sorted(
        key
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key) and not key.startswith(RESUMABLE_CHANGES)
    )
    if changed:
        shown = ", ".join(f"{key} {before.get(key)!r} -> {after.get(key)!r}" for key in changed[:5])
        raise InputError(
            f"{folder.path / 'config.yaml'} differs from the settings its checkpoint was written under ({shown}"
            f"{', ...' if len(changed) > 5 else ''}); resuming would train the rest under other settings: put them "
            "back, or start a new run for the change"
        )


def _as_list(values: Any) -> list[float] | None:
    return None if values is None else [float(value) for value in values]


def resume(run_dir: str | Path) -> dict[str, Any]:
    """Continue ``run_dir`` from its checkpoint with the configuration saved in it: as one process, or, for a run
    that trained under DDP, under torchrun with the same number of processes."""
    from .distributed import launched_by_torchrun, setup, teardown

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "checkpoint.pt").is_file():
        raise InputError(
            f"{run_dir} is not a resumable datacull run folder (it needs config.yaml and checkpoint.pt)"
        )
    folder = RunFolder(run_dir)
    summary = folder.read_summary() if folder.summary_path.exists() else None
    if summary is not None and summary.status == "completed":
        raise InputError(f"{run_dir} has already completed; start a new run instead of resuming it")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    world = summary.world_size if summary is not None else 1
    processes = int(os.environ.get("WORLD_SIZE", "1")) if launched_by_torchrun() else 1
    if processes != world:
        how = (
            f"torchrun --standalone --nproc_per_node={world} -m datacull resume {run_dir}"
            if world > 1
            else (f"datacull resume {run_dir} (without torchrun)")
        )
        raise InputError(f"{run_dir} trained with {world} process(es), not {processes}: resume it with {how}")
    context = setup("ddp" if world > 1 else "single", str(cfg.trainer.device))
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    handler = None
    if context.is_main:  # the run's own log file continues
        handler = logging.FileHandler(run_dir / "train.log")
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        logging.getLogger().addHandler(handler)
    try:
        return train(cfg, run_dir, resume=True, context=context)
    finally:
        teardown(context)
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
