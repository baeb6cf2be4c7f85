"""``train(cfg)``: one configuration, start to finish, read top to bottom (the runner; the module is not named
``train`` so that ``datacull.train`` stays the function).

1. Load the dataset (uint8 tensors) and look up the importance and the sampler in the registry.
2. Construct the sampler and a probe of the importance first, so that a bad setting fails in seconds.
3. If the sampler ranks by a score that comes from a scoring run (static importances, or any importance
   under a static sampler), obtain the cached scoring trajectory and compute the scores once.
4. Train a fresh model epoch by epoch on the sampler's subset: static samplers choose once, dynamic ones
   every ``sampler.resample_every`` epochs, from the run's own logged metrics when the importance is online.
   After every epoch: evaluate when due, append to ``metrics.csv``, save ``checkpoint.pt``.
5. Write ``summary.json`` and the per-sample table. Every file is written atomically.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import TensorDataset

from .data import DCDataLoader, DCDataset
from .datasets import ImageData, load_dataset
from .datasets.common import hold_out_validation, resolve_val_fraction
from .distributed import SINGLE, DistContext, broadcast_object, check_same_on_every_rank
from .engine import Engine, resolve_device
from .errors import InputError
from .importance import DCImportance, ImportanceScores
from .logger import DCLogger
from .outputs import RunFolder
from .registry import get_importance, get_sampler
from .sampling import check_pruning_rate
from .scoring import ScoringRun, obtain_scoring_run
from .tracking import TensorBoardTracker

log = logging.getLogger("datacull")

#: Config keys read by the runner itself rather than passed to the importance / sampler constructor.
RUNNER_IMPORTANCE_KEYS = {"name", "scoring_epochs"}
RUNNER_SAMPLER_KEYS = {"name", "resample_every", "query_epochs"}
#: MetriQ's query model trains for this share of the run (the official Random+DRoP: 16 of 160 epochs).
QUERY_FRACTION = 0.1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _constructor_parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def _params(section: DictConfig, runner_keys: set[str]) -> dict[str, Any]:
    values = OmegaConf.to_container(section, resolve=True)
    return {key: value for key, value in values.items() if key not in runner_keys}


class Plan:
    """What a configuration needs: a scoring run, online logging, which metrics, how many epochs."""

    def __init__(self, cfg: DictConfig, importance_cls: type[DCImportance], sampler_cls: type[DCDataLoader]):
        self.static_sampler = bool(getattr(sampler_cls, "static_selection", False))
        self.uses_scores = sampler_cls.uses_importance is not False
        importance_params = _params(cfg.importance, RUNNER_IMPORTANCE_KEYS)
        self.online = (
            self.uses_scores and importance_cls.is_online(**importance_params) and not self.static_sampler
        )
        needs_trajectory = self.uses_scores and bool(importance_cls.requires) and not self.online
        self.needs_class_acc = (
            "class_wise_acc" in _constructor_parameters(sampler_cls)
            and cfg.sampler.get("class_wise_acc") is None
        )
        self.scoring = needs_trajectory or self.needs_class_acc
        # The scoring run is the beginning of a run scoring.epochs long: its schedule is built for that length and
        # it trains the epochs the importance reads (null: all of them); class accuracies need the whole run.
        self.scoring_schedule_epochs = int(cfg.scoring.epochs)
        if self.scoring_schedule_epochs < 1:
            raise InputError(f"scoring.epochs must be >= 1; got {self.scoring_schedule_epochs}")
        if self.needs_class_acc:  # MetriQ's query model: the first 10% of the run unless told otherwise
            key, read = "sampler.query_epochs", cfg.sampler.get("query_epochs")
            read = read or max(1, round(QUERY_FRACTION * self.scoring_schedule_epochs))
        else:
            key = (
                "importance.scoring_epochs"
                if cfg.importance.get("scoring_epochs")
                else "importance.trajectory_length"
            )
            read = cfg.importance.get("scoring_epochs") or cfg.importance.get("trajectory_length")
        self.scoring_epochs = int(read or self.scoring_schedule_epochs) if self.scoring else 0
        if self.scoring_epochs > self.scoring_schedule_epochs:
            raise InputError(
                f"{key} ({self.scoring_epochs}) exceeds scoring.epochs ({self.scoring_schedule_epochs}): "
                "the scoring run reads the first epochs of a run scoring.epochs long"
            )
        self.importance_params = _params(cfg.importance, RUNNER_IMPORTANCE_KEYS)
        if (
            "trajectory_length" in self.importance_params
            and self.importance_params["trajectory_length"] is None
        ):
            self.importance_params["trajectory_length"] = self.scoring_epochs or self.scoring_schedule_epochs
        self.logged_metrics = tuple(importance_cls.requires) if self.online else ()
        self.resample_every = max(1, int(cfg.sampler.get("resample_every", 1) or 1))
        self.val_fraction = resolve_val_fraction(cfg.dataset.get("val_fraction"), self.needs_class_acc)
        if self.val_fraction and not self.needs_class_acc:
            raise InputError(
                f"dataset.val_fraction={self.val_fraction} but nothing reads a validation split here (only "
                "sampler=metriq's query run does); set dataset.val_fraction=auto"
            )
        self.steps = None if cfg.trainer.get("steps") is None else int(cfg.trainer.steps)
        if self.steps is not None:
            if self.steps < 1:
                raise InputError(
                    f"trainer.steps must be >= 1 (or null for an epoch budget); got {self.steps}"
                )
            if "num_epochs" in _constructor_parameters(sampler_cls):
                raise InputError(
                    f"sampler={cfg.sampler.name} schedules itself over trainer.epochs; it cannot run with a step "
                    "budget (drop trainer.steps)"
                )


def build_importance(
    importance_cls: type[DCImportance],
    params: dict[str, Any],
    dataset: DCDataset,
    loggers: dict[str, DCLogger],
) -> DCImportance:
    """Construct the importance with its parameters and the loggers of the metrics it ``requires``."""
    params = dict(params)
    required = tuple(importance_cls.requires)
    if required:
        params["logger_object"] = loggers[required[0]]
        params.update({f"{metric}_logger": loggers[metric] for metric in required[1:]})
    return importance_cls(dataset=dataset, **params)


def build_sampler(
    sampler_cls: type[DCDataLoader], cfg: DictConfig, dataset: DCDataset, context: dict[str, Any]
) -> DCDataLoader:
    """Construct the sampler with its config, plus the run context its constructor asks for by name."""
    params = _params(cfg.sampler, RUNNER_SAMPLER_KEYS)
    accepted = _constructor_parameters(sampler_cls)
    params.update(
        {key: value for key, value in context.items() if key in accepted and params.get(key) is None}
    )
    return sampler_cls(dataset=dataset, seed=int(cfg.seed), **params)


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
    if not resume:
        folder.refuse_existing_run()
        folder.write_config(cfg)
    started = time.perf_counter() - (checkpoint["wall_time_s"] if checkpoint else 0.0)
    summary: dict[str, Any] = {
        "status": "running",
        "importance": cfg.importance.name,
        "sampler": cfg.sampler.name,
        "pruning_rate": cfg.sampler.pruning_rate,
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "epochs": int(cfg.trainer.epochs),
        "steps": None if cfg.trainer.get("steps") is None else int(cfg.trainer.steps),
        "seed": int(cfg.seed),
        "run_dir": str(folder.path),
        "world_size": context.world_size,
        "started_at": checkpoint["started_at"]
        if checkpoint
        else datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    folder.write_summary(summary)
    try:
        summary.update(_train(cfg, folder, checkpoint, started, summary, context))
    except BaseException as error:
        summary.update(
            status="failed",
            error=f"{type(error).__name__}: {error}",
            wall_time_s=time.perf_counter() - started,
        )
        folder.write_summary(summary)
        raise
    return summary


def _on_main(context: DistContext, compute: Any) -> Any:
    """``compute()`` on rank 0 only, its result broadcast to every rank (importances read rank 0's files)."""
    return broadcast_object(context, compute() if context.is_main else None)


def _train(
    cfg: DictConfig,
    folder: RunFolder,
    checkpoint: dict | None,
    started: float,
    summary: dict,
    context: DistContext,
) -> dict[str, Any]:
    summary["pruning_rate"] = check_pruning_rate(cfg.sampler.pruning_rate)
    seed = int(cfg.seed)
    seed_everything(seed)
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    device = resolve_device(str(cfg.trainer.device), context.local_rank)
    cache_dir = Path(cfg.cache_dir).expanduser()
    epochs = int(cfg.trainer.epochs)
    if epochs < 1:
        raise InputError(f"trainer.epochs must be >= 1; got {epochs}")

    # 1. data, importance and sampler classes -----------------------------------------------------------------
    importance_cls = get_importance(cfg.importance.name)
    sampler_cls = get_sampler(cfg.sampler.name)
    plan = Plan(cfg, importance_cls, sampler_cls)
    data: ImageData = load_dataset(cfg.dataset, cache_dir)
    num_samples = int(data.train_y.shape[0])
    dataset = DCDataset(TensorDataset(data.train_x, data.train_y))
    scoring_data = data
    if plan.val_fraction:
        scoring_data = hold_out_validation(data, plan.val_fraction, int(cfg.dataset.get("split_seed", 0)))
        log.info(
            "validation split: %d samples (%g of each class, dataset.val_fraction=%s) held out of the query run "
            "that measures sampler=%s's class accuracies; training draws from all %d samples",
            scoring_data.val_y.numel(),
            plan.val_fraction,
            cfg.dataset.get("val_fraction"),
            cfg.sampler.name,
            num_samples,
        )
    log.info(
        "%s: %d train / %d val / %d test samples, %d classes; importance=%s sampler=%s pruning_rate=%s on %s",
        cfg.dataset.name,
        num_samples,
        0 if data.val_y is None else data.val_y.numel(),
        data.test_y.numel(),
        data.num_classes,
        cfg.importance.name,
        cfg.sampler.name,
        cfg.sampler.pruning_rate,
        device,
    )

    # 2. the sampler, and a probe of the importance, before anything expensive: bad settings fail in seconds
    sampler = build_sampler(
        sampler_cls, cfg, dataset, {"num_epochs": epochs, "class_wise_acc": cfg.sampler.get("class_wise_acc")}
    )
    with tempfile.TemporaryDirectory() as probe:
        build_importance(
            importance_cls,
            plan.importance_params,
            dataset,
            {m: DCLogger(Path(probe) / m) for m in importance_cls.requires},
        )
    tracker = TensorBoardTracker.from_config(cfg, folder.path, enabled=context.is_main)

    # 3. scores from a (cached) scoring run, or the online importance ---------------------------------------
    scoring: ScoringRun | None = None
    importance: DCImportance | None = None
    scores: ImportanceScores | None = None
    if checkpoint is not None:
        scores, class_wise_acc, scoring_info = (
            checkpoint["scores"],
            checkpoint["class_wise_acc"],
            checkpoint["scoring"],
        )
    else:
        class_wise_acc = cfg.sampler.get("class_wise_acc")
        scoring_info = {
            "scoring_samples": 0,
            "scoring_cost_samples": 0,
            "scoring_wall_time_s": 0.0,
            "scoring_cache_hit": False,
            "scoring_epochs": 0,
            "scoring_schedule_epochs": 0,
        }
        if plan.scoring:
            scoring = obtain_scoring_run(
                cfg,
                scoring_data,
                device,
                plan.scoring_epochs,
                plan.scoring_schedule_epochs,
                cache_dir,
                context,
            )
            scoring_info = {
                "scoring_samples": scoring.trained_samples,
                "scoring_cost_samples": scoring.cost_samples,
                "scoring_wall_time_s": scoring.wall_time_s,
                "scoring_cache_hit": scoring.cache_hit,
                "scoring_epochs": scoring.epochs,
                "scoring_schedule_epochs": scoring.schedule_epochs,
            }
            if plan.needs_class_acc:
                class_wise_acc = scoring.best_validation_class_accuracy()
                if class_wise_acc is None:
                    raise InputError(
                        f"sampler={cfg.sampler.name} needs per-class validation accuracy: set dataset.val_fraction "
                        "to auto or > 0, or give sampler.class_wise_acc"
                    )
    if plan.needs_class_acc:
        sampler.set_class_wise_acc(class_wise_acc)
        summary["class_wise_acc"] = [float(value) for value in class_wise_acc]
    if plan.online:
        loggers = {
            metric: DCLogger(folder.path / "trajectory" / metric, num_samples=num_samples, distributed=True)
            for metric in plan.logged_metrics
        }
        importance = build_importance(importance_cls, plan.importance_params, dataset, loggers)
        if checkpoint is not None:
            importance.load_state_dict(checkpoint["importance"])
        else:
            scores = _on_main(context, importance.compute_importance)
    else:
        loggers = {}
        if plan.uses_scores and checkpoint is None:
            source = {metric: scoring.logger(metric) for metric in importance_cls.requires} if scoring else {}
            importance = build_importance(importance_cls, plan.importance_params, dataset, source)
            importance.flush = False  # never delete cached trajectories
            scores = _on_main(context, importance.compute_importance)

    # 4. the training run ------------------------------------------------------------------------------------
    engine = Engine(cfg, data, device, epochs=epochs, seed=seed, context=context, steps=plan.steps)
    rows: list[dict[str, Any]] = []
    times_selected = torch.zeros(num_samples, dtype=torch.long)
    start_epoch = 0
    if checkpoint is not None:
        engine.load_state_dict(checkpoint["engine"])
        sampler.load_state_dict(checkpoint["sampler"])
        rows, times_selected = checkpoint["rows"], checkpoint["times_selected"]
        start_epoch = checkpoint["epoch"] + 1
        _restore_rng(checkpoint["rng"])
        log.info("resuming %s at epoch %d", folder.path, start_epoch + 1)
    eval_every = max(1, int(cfg.trainer.get("eval_every", 1) or 1))
    with (
        ProgressDisplay(
            cfg, None if plan.steps else epochs, start_epoch, enabled=context.is_main
        ) as progress,
        tracker.opened(start_epoch),
    ):
        epoch = start_epoch
        while not engine.budget_spent if plan.steps else epoch < epochs:
            epoch_start = time.perf_counter()
            if sampler.subset_indices is None or (
                not plan.static_sampler and epoch % plan.resample_every == 0
            ):
                sampler.set_epoch(epoch)
                sampler.resample(scores if plan.uses_scores else None)
                check_same_on_every_rank(context, sampler.subset_indices, "the subset")
            order = sampler.sampler.epoch_order()
            stats = engine.train_epoch(
                epoch,
                order,
                sampler.sample_weights,
                loggers,
                progress.batches(len(order), engine.batch_size, epoch),
            )
            times_selected += stats.trained
            train_time = time.perf_counter() - epoch_start
            last = engine.budget_spent if plan.steps else epoch + 1 == epochs
            row = {
                "epoch": epoch,
                "train_loss": stats.loss,
                "train_acc": stats.accuracy,
                "test_acc": None,
                "worst_class_acc": None,
                "subset_size": stats.samples,
                "steps": stats.steps,
                "train_time_s": train_time,
                "eval_time_s": 0.0,
                "epoch_time_s": None,
                "lr": stats.lr,
            }
            if (epoch + 1) % eval_every == 0 or last:
                eval_start = time.perf_counter()
                evaluation = engine.evaluate("test")
                row.update(test_acc=evaluation.accuracy, worst_class_acc=evaluation.worst_class)
                row["eval_time_s"] = time.perf_counter() - eval_start
                summary["per_class_acc"] = evaluation.per_class
            for logger in loggers.values():
                logger.flush()
            if plan.online and not last and (epoch + 1) % plan.resample_every == 0:
                scores = _on_main(context, importance.compute_importance)
            row["epoch_time_s"] = time.perf_counter() - epoch_start
            rows.append(row)
            progress.epoch_done(row)
            tracker.log(row)
            folder.write_metrics(rows)
            folder.save_checkpoint(
                {
                    "epoch": epoch,
                    "engine": engine.state_dict(),
                    "sampler": sampler.state_dict(),
                    "importance": importance.state_dict() if plan.online else None,
                    "scores": scores,
                    "class_wise_acc": class_wise_acc,
                    "scoring": scoring_info,
                    "rows": rows,
                    "times_selected": times_selected,
                    "rng": _capture_rng(),
                    "wall_time_s": time.perf_counter() - started,
                    "started_at": summary["started_at"],
                }
            )
            epoch += 1

    # 5. summary and per-sample table -------------------------------------------------------------------------
    final_scores = (
        np.asarray(scores, dtype=np.float64) if scores is not None else np.full(num_samples, np.nan)
    )
    folder.write_samples(data.train_y.numpy(), final_scores, times_selected.numpy())
    evaluated = [row for row in rows if row["test_acc"] is not None]
    samples_trained = int(sum(row["subset_size"] for row in rows))
    full_data_samples = full_data_budget(num_samples, engine.batch_size, epochs, plan.steps)
    result = {
        "status": "completed",
        "test_acc": evaluated[-1]["test_acc"],
        "best_test_acc": max(row["test_acc"] for row in evaluated),
        "worst_class_acc": evaluated[-1]["worst_class_acc"],
        "per_class_acc": summary.get("per_class_acc"),
        "samples_trained": samples_trained,
        **scoring_info,
        "full_data_samples": full_data_samples,
        "realized_pruning_rate": 1.0 - samples_trained / full_data_samples,
        "compute_saved": 1.0 - (samples_trained + scoring_info["scoring_cost_samples"]) / full_data_samples,
        "num_train_samples": num_samples,
        "epochs_trained": len(rows),
        "steps_trained": engine.global_step,
        "train_time_s": float(sum(row["train_time_s"] for row in rows)),
        "eval_time_s": float(sum(row["eval_time_s"] for row in rows)),
        "device": str(device),
        "wall_time_s": time.perf_counter() - started,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    summary.update(result)
    folder.write_summary(summary)
    log.info(
        "done: test_acc %.4f  worst_class_acc %.4f  compute_saved %.3f  -> %s",
        result["test_acc"],
        result["worst_class_acc"],
        result["compute_saved"],
        folder.path,
    )
    return result


def full_data_budget(num_samples: int, batch_size: int, epochs: int, steps: int | None) -> int:
    """Samples a full-data run trains under the same budget: ``epochs`` passes, or ``steps`` batches of
    ``batch_size`` (whole passes, then the first batches of one more, as the loop splits them)."""
    if steps is None:
        return epochs * num_samples
    per_epoch = max(1, math.ceil(num_samples / batch_size))
    passes, extra = divmod(steps, per_epoch)
    return passes * num_samples + extra * (num_samples // per_epoch) + min(extra, num_samples % per_epoch)


def _capture_rng() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ProgressDisplay:
    """tqdm bars over epochs and batches on a terminal (log lines routed around them); plain log lines otherwise."""

    def __init__(self, cfg: DictConfig, epochs: int, start_epoch: int, enabled: bool = True):
        setting = str(cfg.trainer.get("progress", "auto"))
        self.interactive = enabled and (setting == "bar" or (setting == "auto" and sys.stderr.isatty()))
        self.epochs = epochs
        self.start_epoch = start_epoch
        self.epoch_bar = self.batch_bar = self._redirect = None

    def __enter__(self) -> ProgressDisplay:
        if self.interactive:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
            self.epoch_bar = tqdm(
                total=self.epochs, initial=self.start_epoch, desc="epochs", position=0, dynamic_ncols=True
            )
        return self

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

    def epoch_done(self, row: dict[str, Any]) -> None:
        test = (
            ""
            if row["test_acc"] is None
            else f"  test_acc {row['test_acc']:.4f}  worst_class {row['worst_class_acc']:.4f}"
        )
        log.info(
            "epoch %d/%s  loss %.4f  acc %.4f  subset %d%s  train %.2fs  eval %.2fs",
            row["epoch"] + 1,
            self.epochs or "?",
            row["train_loss"],
            row["train_acc"],
            row["subset_size"],
            test,
            row["train_time_s"],
            row["eval_time_s"],
        )
        if self.epoch_bar is not None:
            self.epoch_bar.update(1)

    def __exit__(self, *exc_info: Any) -> None:
        for bar in (self.batch_bar, self.epoch_bar):
            if bar is not None:
                bar.close()
        if self._redirect is not None:
            self._redirect.__exit__(*exc_info)
