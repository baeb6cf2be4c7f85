"""The run's parts, built once from the config: nothing below this module reads ``cfg``.

:func:`build_parts` turns a composed config into objects: the data, the training recipe (model, optimizer,
schedule, augmentation, precision), the budget, the loader that chooses the subset, the :class:`ScoreSource` that
feeds it, and the epoch observers. Every check that can fail on a bad setting runs here, before any training.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import TensorDataset

from .budget import Budget, plan_budget, resolve_budget
from .catalog import get_dataset, get_importance, get_sampler
from .checks import check_classes, check_settings, degenerate_subset, warn
from .data import DCDataLoader, DCDataset
from .datasets import ImageData
from .datasets.common import hold_out_validation, resolve_val_fraction
from .datasets.custom import check_augment
from .distributed import SINGLE, DistContext
from .engine import PER_SAMPLE_METRICS
from .errors import DataError, InputError
from .importance import DCImportance
from .legacy import note_runner_ignores_rate_variable, runner_rates
from .logger import DCLogger
from .observers import Observers, ProgressDisplay, TensorBoardTracker
from .plan import NONE, ONLINE, ScorePlan, plan_scores
from .recipe import Component, Recipe, build_recipe
from .sampling import check_pruning_rate
from .score_source import ScoreSource
from .scoring_run import ScoringRequest
from .settings import TrainerSettings

log = logging.getLogger("datacull")

#: Sampler config keys that configure the score policy rather than the sampler itself.
POLICY_KEYS = {"name", "resample_every"}
#: MetriQ's query run trains for this share of the run (the official Random+DRoP: 16 of 160 epochs).
QUERY_FRACTION = 0.1


@dataclass
class RunParts:
    """Everything one run needs, resolved from its config."""

    seed: int
    pruning_rate: float
    plan: ScorePlan
    data: ImageData
    recipe: Recipe
    budget: Budget
    eval_every: int
    loader: DCDataLoader
    source: ScoreSource
    observers: Observers
    warnings: list[str]  # legal but degenerate settings, also in summary.json

    @cached_property
    def num_samples(self) -> int:
        return int(self.data.train_y.shape[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_kernels(device: torch.device, deterministic: bool) -> None:
    """``trainer.deterministic``: false (default) lets cuDNN pick the fastest kernels and matmuls use TF32 on
    Ampere and newer; true asks for deterministic algorithms everywhere (slower), so that conv models give the same
    weights run after run and a resumed run equals an uninterrupted one on the GPU too."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cuda.matmul.allow_tf32 = not deterministic
    torch.backends.cudnn.allow_tf32 = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=False)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``trainer.device`` as a torch device; under DDP ``cuda`` means this process's GPU (its local rank)."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if name == "auto":
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"trainer.device={name} but CUDA is not available here; use trainer.device=cpu or auto"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"trainer.device must be auto, cpu or cuda[:N]; got {name!r}")
    return torch.device(name)


def load_dataset(cfg: Any, cache_dir: str | Path) -> ImageData:
    """The configured dataset (its training and test splits) from its registered loader: ``dataset.source`` where
    ``dataset.name`` names the data set itself (``dataset=torchvision dataset.name=SVHN``), else ``dataset.name``."""
    data: ImageData = get_dataset(cfg.get("source") or cfg.name)(cfg, Path(cache_dir))
    if data.train_x.shape[0] == 0:
        raise DataError(f"dataset '{cfg.name}' has no training samples left after subsetting")
    return data


def build_loader(
    cfg: DictConfig, sampler_cls: type[DCDataLoader], dataset: DCDataset, budget: Budget
) -> DCDataLoader:
    """The sampler, from its conf section (every key but the score policy's) and what it declares it needs."""
    values = OmegaConf.to_container(cfg.sampler, resolve=True)
    params = {key: value for key, value in values.items() if key not in POLICY_KEYS}
    if sampler_cls.needs_num_epochs:
        params["num_epochs"] = budget.epochs
    with (
        runner_rates()
    ):  # sampler.pruning_rate is always the fraction removed, whatever DATACULL_PRUNING_RATE says
        return sampler_cls(dataset=dataset, seed=int(cfg.seed), **params)


def _scoring_epochs(cfg: DictConfig, loader: DCDataLoader, schedule_epochs: int) -> int:
    """How many epochs of the scoring run this configuration reads."""
    if loader.needs_class_accuracy:  # MetriQ's query run: the first 10% of the run unless told otherwise
        read = loader.query_epochs or max(1, round(QUERY_FRACTION * schedule_epochs))
        key = "sampler.query_epochs"
    else:
        read = cfg.importance.get("trajectory_length") or schedule_epochs
        key = "importance.trajectory_length"
    if int(read) > schedule_epochs:
        raise InputError(
            f"{key} ({read}) exceeds scoring.epochs ({schedule_epochs}): "
            "the scoring run reads the first epochs of a run scoring.epochs long"
        )
    return int(read)


def _reduced_store(cfg: DictConfig, importance_cls: type[DCImportance], data: ImageData, epochs: int) -> bool:
    """``trainer.store``: full (every logit of every epoch), reduced (what the importance keeps of each epoch), or
    auto: full unless it would exceed ``trainer.store_limit_gb``. A reduced entry serves only this importance."""
    trainer = TrainerSettings.of(cfg.trainer)  # its store is one of the three: checks.SCHEMA
    store = trainer.store
    full_gb = data.train_y.numel() * (data.num_classes + 2) * 4 * epochs / 1e9  # logits, loss, embedding norm
    limit = float(trainer.store_limit_gb)
    reduced = store == "reduced" or (
        store == "auto" and "logits" in importance_cls.requires and full_gb > limit
    )
    if reduced and not importance_cls.reducible:
        raise InputError(
            f"importance={cfg.importance.name} cannot read a reduced store; set trainer.store=full"
        )
    if reduced:
        reason = (
            "trainer.store=reduced"
            if store == "reduced"
            else f"the full store would take {full_gb:.1f} GB > trainer.store_limit_gb={limit:g}"
        )
        log.info(
            "trajectory store: reduced (%s): the scoring run keeps what importance=%s reads of each epoch, a few "
            "numbers per sample; other importances cannot share it",
            reason,
            cfg.importance.name,
        )
    return reduced


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


def _scoring_request(
    cfg: DictConfig,
    loader: DCDataLoader,
    data: ImageData,
    recipe: Recipe,
    plan: ScorePlan,
    importance: tuple[type[DCImportance], dict[str, Any]],
    context: DistContext,
) -> ScoringRequest | None:
    """The scoring run this configuration reads, if any: a static importance's trajectory, or MetriQ's query run
    on the training set minus a validation split. Sets the importance's parameters that follow from it (how many
    epochs it reads; whether its store is reduced)."""
    importance_cls, importance_params = importance
    needs_trajectory = plan.reads_scoring_run
    needs_class_accuracy = loader.needs_class_accuracy and loader.class_wise_acc is None
    val_fraction = resolve_val_fraction(cfg.dataset.get("val_fraction"), needs_class_accuracy)
    if val_fraction and not needs_class_accuracy:
        raise InputError(
            f"dataset.val_fraction={val_fraction} but nothing reads a validation split here (only "
            "sampler=metriq's query run does); set dataset.val_fraction=auto"
        )
    if "trajectory_length" in importance_params:  # a static importance reads the scoring run's first epochs
        importance_params["trajectory_length"] = None
    if not (needs_trajectory or needs_class_accuracy):
        return None
    schedule_epochs = int(cfg.scoring.epochs)
    read = _scoring_epochs(cfg, loader, schedule_epochs)
    reducer_key, metrics = None, tuple(PER_SAMPLE_METRICS)
    if needs_trajectory:
        if "trajectory_length" in importance_params:
            importance_params["trajectory_length"] = read
        if _reduced_store(cfg, importance_cls, data, read):
            if "logits" in importance_cls.requires:
                importance_params["reduced"] = True
            reducer_key = importance_cls.reducer_key(**importance_params)
            metrics = tuple(importance_cls.requires)
    scoring_data = data
    if val_fraction:
        scoring_data = hold_out_validation(data, val_fraction, int(cfg.dataset.get("split_seed", 0)))
        log.info(
            "validation split: %d samples (%g of each class, dataset.val_fraction=%s) held out of the query run "
            "that measures sampler=%s's class accuracies; training draws from all %d samples",
            scoring_data.val_y.numel(),
            val_fraction,
            cfg.dataset.get("val_fraction"),
            cfg.sampler.name,
            data.train_y.numel(),
        )
    cache_dir = Path(cfg.cache_dir).expanduser()
    scoring_recipe, cost_ratio = recipe, 1.0
    if cfg.scoring.get("model") is not None:  # a proxy: charged by its FLOPs relative to the model trained
        scoring_recipe = dataclasses.replace(recipe, model=Component.from_config(cfg.scoring.model))
        cost_ratio = scoring_recipe.flops_per_sample(data) / recipe.flops_per_sample(data)
        log.info(
            "scoring run by a proxy: model=%s %s, %.3g of the FLOPs per sample of model=%s",
            scoring_recipe.model.name,
            scoring_recipe.model.params,
            cost_ratio,
            recipe.model.name,
        )
    return ScoringRequest(
        scoring_recipe,
        scoring_data,
        int(cfg.seed),
        read,
        schedule_epochs,
        cache_dir,
        context,
        cost_ratio,
        reducer_key=reducer_key,
        metrics=metrics,
    )


def _plan_scores(
    cfg: DictConfig,
    importance_cls: type[DCImportance],
    loader: DCDataLoader,
    data: ImageData,
    recipe: Recipe,
    dataset: DCDataset,
    run_dir: Path,
    context: DistContext,
) -> tuple[ScorePlan, ScoringRequest | None, DCImportance | None]:
    """Which scores the loader gets (none, the run's own: online, or a scoring run's: static), the scoring run
    to obtain first, and the importance with its loggers (an online one's write the run's ``trajectory/``; a
    static one's read the scoring run's cache entry, never writing it)."""
    importance_params = OmegaConf.to_container(cfg.importance, resolve=True)
    importance_params.pop("name")
    plan = plan_scores(loader, importance_cls.is_online(**importance_params), importance_cls.requires)
    request = _scoring_request(cfg, loader, data, recipe, plan, (importance_cls, importance_params), context)
    if plan.mode == NONE:
        return plan, request, None
    if plan.mode == ONLINE:
        loggers = {
            metric: DCLogger(
                Path(run_dir) / "trajectory" / metric, num_samples=data.train_y.numel(), distributed=True
            )
            for metric in plan.metrics
        }
    else:
        loggers = {metric: DCLogger(request.directory / metric) for metric in plan.metrics}
    return plan, request, build_importance(importance_cls, importance_params, dataset, loggers)


def _samples_per_pass(cfg: DictConfig, loader: DCDataLoader, batch_size: int) -> int:
    """What one pass over the subset trains: with ``drop_last``, its whole batches only."""
    if not loader.drop_last:
        return loader.required_num_samples
    per_pass = loader.required_num_samples // batch_size * batch_size
    if per_pass == 0:
        raise InputError(
            f"sampler={cfg.sampler.name} keeps {loader.required_num_samples} samples per pass, fewer than "
            f"trainer.batch_size={batch_size} with sampler.drop_last=true: no pass would train a batch; "
            "lower trainer.batch_size or set sampler.drop_last=false"
        )
    return per_pass


def _log_run(
    cfg: DictConfig,
    data: ImageData,
    device: torch.device,
    budget: Budget,
    request: ScoringRequest | None,
    scores_only: bool,
) -> None:
    """The run's first log line: the data, the method, the device, the budget and the scoring run read."""
    scoring = (
        f"; scoring run: the first {request.epochs} of {request.schedule_epochs} epochs (scoring.epochs)"
        if request
        else ""
    )
    chosen = (  # `datacull score` trains nothing: no sampler, rate or budget of its own
        f"importance={cfg.importance.name} (its scores only)"
        if scores_only
        else f"importance={cfg.importance.name} sampler={cfg.sampler.name} pruning_rate={cfg.sampler.pruning_rate} "
        f"on {device}; budget: {budget.describe()}"
    )
    log.info(
        "%s: %d train / %d test samples, %d classes; %s%s",
        cfg.dataset.name,
        data.train_y.numel(),
        data.test_y.numel(),
        data.num_classes,
        chosen,
        scoring,
    )


def build_parts(
    cfg: DictConfig, run_dir: Path, context: DistContext = SINGLE, scores_only: bool = False
) -> RunParts:
    """Resolve ``cfg`` into the run's parts; every setting is checked here, before anything trains."""
    check_settings(cfg)
    seed = int(cfg.seed)
    seed_everything(seed)
    trainer = TrainerSettings.of(cfg.trainer)
    if trainer.num_threads:
        torch.set_num_threads(trainer.num_threads)
    device = resolve_device(trainer.device, context.local_rank)
    configure_kernels(device, trainer.deterministic)
    cache_dir = Path(cfg.cache_dir).expanduser()
    pruning_rate = check_pruning_rate(cfg.sampler.pruning_rate)
    note_runner_ignores_rate_variable()
    importance_cls = get_importance(cfg.importance.name)  # an unknown name fails here, before the data loads
    sampler_cls = get_sampler(cfg.sampler.name)
    budget = plan_budget(trainer, cfg.sampler.name, sampler_cls.needs_num_epochs)
    recipe = build_recipe(cfg, device)
    data = load_dataset(cfg.dataset, cache_dir)
    check_classes(data.train_y, data.test_y, data.classes)
    check_augment(recipe.augment, data.images)
    # the samplers and importances read labels only; the engine reads the images from ``data`` itself
    dataset = DCDataset(TensorDataset(torch.zeros(data.train_y.numel(), 0), data.train_y))
    loader = build_loader(cfg, sampler_cls, dataset, budget)
    warnings: list[str] = []
    if not sampler_cls.needs_num_epochs:  # InfoBatch's kept count is its own, epoch by epoch
        warn(
            warnings,
            degenerate_subset(loader.required_num_samples, data.num_classes, cfg.sampler.name, pruning_rate),
        )

    plan, request, importance = _plan_scores(
        cfg, importance_cls, loader, data, recipe, dataset, run_dir, context
    )
    if not scores_only:  # `datacull score` trains no subset
        budget = resolve_budget(
            budget,
            data.train_y.numel(),
            _samples_per_pass(cfg, loader, recipe.batch_size),
            recipe.batch_size,
            0 if request is None else request.cost_samples,
        )
    source = ScoreSource(
        loader,
        importance,
        resample_every=int(cfg.sampler.get("resample_every") or 1),  # null: every epoch
        scoring=request,
        context=context,
    )
    observers = Observers(
        ProgressDisplay(trainer.progress, None if budget.steps else budget.epochs),
        TensorBoardTracker(Path(run_dir) / "tensorboard" if trainer.tensorboard else None),
        enabled=context.is_main,
    )
    _log_run(cfg, data, device, budget, request, scores_only)
    return RunParts(
        seed=seed,
        pruning_rate=pruning_rate,
        plan=plan,
        data=data,
        recipe=recipe,
        budget=budget,
        eval_every=trainer.eval_every,
        warnings=warnings,
        loader=loader,
        source=source,
        observers=observers,
    )
