"""One rule for the runner's settings: a value that cannot mean what it says is a one-line error; a legal but
degenerate setting is a warning, in the log and in ``summary.json`` (``warnings``).

Checked here, before anything trains: every key of the config groups against ``SCHEMA`` (its type, its range or
its choices: a wrong value is refused naming the key before it reaches torch), and the data set's classes (every
class of the test set has training samples; more than one class). Degenerate but legal: a pruning rate that leaves
fewer samples than classes. Keys the schema does not know (a custom model's or data set's own arguments) pass to
their constructor unchecked.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import DataError, InputError
from .paths import config_dir

log = logging.getLogger("datacull")


@dataclass(frozen=True)
class Setting:
    """What one config key accepts. ``kind``: ``whole`` (an int), ``number`` (an int or float), ``flag`` (true or
    false), ``choice`` (one of ``words``), ``text`` (any single value: a name, a path, a column), ``numbers`` (a list
    of numbers), ``names`` (a name or a list of names). A ``number`` may also be one of ``words`` (``auto``). Bounds are closed unless ``*_open``."""

    kind: str
    meaning: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    words: tuple[str, ...] = ()


def whole(low: int, meaning: str, nullable: bool = False) -> Setting:
    return Setting("whole", meaning, low=low, nullable=nullable)


def number(
    meaning: str, low=None, high=None, low_open=False, high_open=False, nullable=False, words=()
) -> Setting:
    return Setting("number", meaning, low, high, low_open, high_open, nullable, tuple(words))


def flag(meaning: str, nullable: bool = False) -> Setting:
    return Setting("flag", meaning, nullable=nullable)


def choice(meaning: str, *words: str) -> Setting:
    return Setting("choice", meaning, words=words)


def text(meaning: str) -> Setting:
    return Setting("text", meaning, nullable=True)


SHARE = {"low": 0.0, "high": 1.0}
#: Every key of the config groups (model keys also under ``scoring.model``): a test holds this equal to the keys
#: of the files in ``conf/``. Method parameters repeat their method's own range check, so that the runner refuses
#: a bad value before the run folder fills.
SCHEMA: dict[str, Setting] = {
    "seed": whole(0, "the run's seed"),
    "output_dir": text("where run folders go"),
    "cache_dir": text("where scoring runs and decoded data sets are cached"),
    "scoring.epochs": whole(1, "the scoring run's schedule length"),
    # trainer
    "trainer.epochs": whole(1, "passes over the subset"),
    "trainer.budget": choice("how long a run trains", "epochs", "equal_steps", "compute"),
    "trainer.compute": number(
        "a share of one full-data run", low=0.0, high=1.0, low_open=True, nullable=True
    ),
    "trainer.steps": whole(1, "an absolute budget in optimizer steps", nullable=True),
    "trainer.batch_size": whole(1, "samples per optimizer step"),
    "trainer.eval_batch_size": whole(1, "samples per evaluation batch"),
    "trainer.device": text("auto, cpu, cuda or cuda:N"),
    "trainer.amp": flag("mixed precision on CUDA"),
    "trainer.channels_last": flag("channels-last memory format on CUDA"),
    "trainer.compile": flag("torch.compile the model"),
    "trainer.deterministic": flag("deterministic CUDA kernels"),
    "trainer.eval_every": whole(1, "evaluate every N epochs, and always after the last"),
    "trainer.num_threads": whole(1, "torch CPU threads", nullable=True),
    "trainer.progress": choice("how progress is shown", "auto", "bar", "log"),
    "trainer.tensorboard": flag("per-epoch metrics as TensorBoard scalars"),
    "trainer.store": choice("how scoring trajectories are stored", "auto", "full", "reduced"),
    "trainer.store_limit_gb": number("the full store's size limit in GB", low=0.0, low_open=True),
    "trainer.strategy": choice("one process or DDP", "single", "ddp"),
    # optimizer
    "optimizer.name": text("the optimizer"),
    "optimizer.lr": number("the base learning rate", low=0.0, low_open=True),
    "optimizer.momentum": number("SGD momentum", low=0.0, high=1.0, high_open=True),
    "optimizer.nesterov": flag("Nesterov momentum"),
    "optimizer.weight_decay": number("L2 weight decay", low=0.0),
    # scheduler
    "scheduler.name": text("the learning-rate schedule"),
    "scheduler.warmup_epochs": number("epochs of linear warm-up", low=0.0),
    "scheduler.min_lr_factor": number("the floor, as a share of the base learning rate", **SHARE),
    "scheduler.gamma": number("the step schedule's factor at each milestone", low=0.0, low_open=True),
    "scheduler.milestones": Setting("numbers", "epochs at which the step schedule decays", low=0),
    # model (also scoring.model)
    "model.name": text("the model"),
    "model._target_": text("a custom model's class"),
    "model.arch": text("the zoo's architecture name"),
    "model.pretrained": flag("load the zoo's pretrained weights"),
    "model.feature_layer": text("the module whose input is the per-sample embedding"),
    "model.hidden": whole(1, "hidden units per layer"),
    "model.depth": whole(1, "layers or stages"),
    "model.width": whole(1, "channels of the first stage"),
    # dataset
    "dataset.name": text("the data set"),
    "dataset._target_": text("a custom data set's class"),
    "dataset.test._target_": text("a custom data set's test-split class"),
    "dataset.augment._target_": text("a custom transform applied to training batches"),
    "dataset.augment.crop_padding": whole(0, "pixels of padding for random crops"),
    "dataset.augment.flip": flag("random horizontal flips"),
    "dataset.root": text("the data set's folder"),
    "dataset.path": text("a Hugging Face data set's name or load_from_disk folder"),
    "dataset.config_name": text("a Hugging Face data set's configuration"),
    "dataset.source": text("where a named data set comes from"),
    "dataset.input_column": Setting(
        "names", "the input column, or a list of them (a dict of tensors)", nullable=True
    ),
    "dataset.label_column": text("the label column"),
    "dataset.train_split": text("the training split's name"),
    "dataset.test_split": text("the test split's name"),
    "dataset.collate_fn": text("a custom collate function"),
    "dataset.download": flag("download the data set if it is missing"),
    "dataset.channels": whole(1, "input channels", nullable=True),
    "dataset.image_size": Setting("numbers", "[H, W] to resize images to", low=1, nullable=True),
    "dataset.in_memory": Setting("flag", "hold the data set as tensors", words=("auto",)),
    "dataset.memory_limit_gb": number("the resident data set's size limit in GB", low=0.0, low_open=True),
    "dataset.workers": whole(0, "DataLoader workers", nullable=True),
    "dataset.split_seed": whole(0, "the seed of the validation split"),
    "dataset.subset_per_class": whole(
        1, "training samples of each class; null for all of them", nullable=True
    ),
    "dataset.test_subset_per_class": whole(
        1, "test samples of each class; null for all of them", nullable=True
    ),
    "dataset.val_fraction": number(
        "the share of training samples held out for validation",
        low=0.0,
        high=1.0,
        high_open=True,
        words=("auto",),
    ),
    # importance
    "importance.name": text("the importance score"),
    "importance.trajectory_length": whole(1, "epochs of the scoring run read", nullable=True),
    "importance.window_size": whole(2, "epochs per sliding window"),
    "importance.decay": number("TDDS's window decay", low=0.0, high=1.0, low_open=True),
    "importance.beta": number("RCAP's softmax temperature", low=0.0, low_open=True),
    "importance.probability_space": flag("AUM on probabilities instead of logits"),
    "importance.clipping_threshold": number("the clipping threshold", low=0.0, low_open=True, nullable=True),
    "importance.metric": text("cartography's metric"),
    "importance.mode": text("which losses the loss importance reads"),
    # sampler
    "sampler.name": text("the sampler"),
    "sampler.pruning_rate": number(
        "the fraction of samples REMOVED (0.3 keeps 70%)", low=0.0, high=1.0, high_open=True
    ),
    "sampler.resample_every": whole(1, "resample a dynamic sampler every N epochs", nullable=True),
    "sampler.beta": number(
        "CCS's hardest share cut first", low=0.0, high=1.0, high_open=True, words=("auto",)
    ),
    "sampler.beta_table": text("whose row of the CCS paper's table beta=auto reads"),
    "sampler.num_strata": whole(1, "CCS's strata"),
    "sampler.official_rounding": flag("the official code's rounding of subset sizes"),
    "sampler.higher_is_harder": flag(
        "larger score = harder (null: the importance's direction)", nullable=True
    ),
    "sampler.descending": flag("the old name of higher_is_harder", nullable=True),
    "sampler.class_balanced": flag("class-proportional quotas"),
    "sampler.stratified": flag("the old name of class_balanced", nullable=True),
    "sampler.stratify": flag("DataCull 1.0.2's name of class_balanced", nullable=True),
    "sampler.class_mass": text("what RCAP's class budgets follow"),
    "sampler.class_wise_acc": Setting("numbers", "per-class accuracies", nullable=True),
    "sampler.easiest": flag("keep the easiest samples instead of the hardest"),
    "sampler.drop_last": flag("drop each round's last incomplete batch"),
    "sampler.delta": number("InfoBatch's share of epochs that prune", low=0.0, high=1.0, low_open=True),
    "sampler.epsilon": number("the exploration share", **SHARE),
    "sampler.exploration": number("the c of mean + c * std", low=0.0),
    "sampler.ema_rate": number("the weight of the newest score", low=0.0, high=1.0, low_open=True),
    "sampler.query_epochs": whole(1, "MetriQ's query run length", nullable=True),
    "sampler.sampling_with_replacement": flag("draw each round with replacement"),
}


def _describe(setting: Setting) -> str:
    nothing = " (or null)" if setting.nullable and setting.kind in ("whole", "number") else ""
    if setting.kind == "whole":
        return f"a whole number >= {setting.low}{nothing}"
    if setting.kind == "flag":
        return "true or false" + "".join(f" or {word}" for word in setting.words)
    if setting.kind == "choice":
        return "one of " + ", ".join(setting.words)
    if setting.kind == "numbers":
        return "a list of numbers" + (f" >= {setting.low:g}" if setting.low is not None else "")
    if setting.kind == "names":
        return "a name or a list of names"
    if setting.kind == "text":
        return "one value"
    low, high = setting.low, setting.high
    if low is not None and high is not None:
        bounds = f" in {'(' if setting.low_open else '['}{low:g}, {high:g}{')' if setting.high_open else ']'}"
    elif low is not None:
        bounds = f" {'>' if setting.low_open else '>='} {low:g}"
    else:
        bounds = ""
    return f"a number{bounds}" + "".join(f" or {word}" for word in setting.words) + nothing


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _within(setting: Setting, value: float) -> bool:
    if not math.isfinite(value):
        return False
    if setting.low is not None and (value < setting.low or (setting.low_open and value == setting.low)):
        return False
    return setting.high is None or (value < setting.high if setting.high_open else value <= setting.high)


def accepts(setting: Setting, value: Any) -> bool:
    """Whether ``value`` means what ``setting`` says."""
    if value is None:
        return setting.nullable
    if isinstance(value, str) and value in setting.words:
        return True
    if setting.kind == "text":
        return not isinstance(value, Mapping | Sequence) or isinstance(value, str)
    if setting.kind == "flag":
        return isinstance(value, bool)
    if setting.kind == "choice":
        return False
    if setting.kind == "names":
        names = [value] if isinstance(value, str) else value
        return isinstance(names, Sequence | ListConfig) and all(isinstance(name, str) for name in names)
    if setting.kind == "numbers":
        return (
            isinstance(value, Sequence | ListConfig)
            and not isinstance(value, str)
            and all(_is_number(item) and _within(setting, item) for item in value)
        )
    if setting.kind == "whole":
        return isinstance(value, int) and not isinstance(value, bool) and _within(setting, value)
    return _is_number(value) and _within(setting, float(value))


#: Method groups: a plugin's method may give a key of the same name another meaning, so a method parameter is
#: checked only for the built-in options whose conf file holds it; these keys mean the same for every method.
METHOD_GROUPS = ("importance", "sampler")
EVERY_METHOD = {"importance.name", "sampler.name", "sampler.pruning_rate", "sampler.resample_every"}


@functools.cache
def built_in_parameters(group: str, option: str) -> frozenset[str]:
    """The keys of ``conf/<group>/<option>.yaml`` (none for an option that is not built in)."""
    path = config_dir() / group / f"{option}.yaml"
    if not path.is_file():
        return frozenset()
    node = OmegaConf.load(path)
    return frozenset(f"{group}.{key}" for key in leaf_keys(node) if key != "defaults")


def _checked(cfg: Any, key: str) -> bool:
    group = key.split(".", 1)[0]
    if group not in METHOD_GROUPS or key in EVERY_METHOD:
        return True
    return key in built_in_parameters(group, str(cfg[group].get("name")))


def setting_of(key: str) -> Setting | None:
    """The schema entry of ``key``; a proxy scoring model's keys are the model's."""
    if key.startswith("scoring.model."):
        key = key.removeprefix("scoring.")
    return SCHEMA.get(key)


def leaf_keys(node: Any, prefix: str = "") -> list[str]:
    """The dotted keys of ``node``'s leaves (lists are leaves)."""
    keys = []
    for key in node:
        value = node._get_node(key) if isinstance(node, DictConfig) else node[key]
        dotted = f"{prefix}{key}"
        if isinstance(value, DictConfig) and not value._is_none() or isinstance(value, dict):
            keys.extend(leaf_keys(node[key], dotted + "."))
        else:
            keys.append(dotted)
    return keys


def check_settings(cfg: Any) -> None:
    """A one-line error for the first key of ``cfg`` whose value ``SCHEMA`` refuses (type, range or choice)."""
    for key in leaf_keys(cfg):
        setting = setting_of(key)
        if setting is None or not _checked(cfg, key):
            continue
        value = _value(cfg, key)
        if accepts(setting, value):
            continue
        hint = ""
        if (
            key == "sampler.pruning_rate"
            and isinstance(value, Sequence | ListConfig)
            and not isinstance(value, str)
        ):
            hint = ": to run several, add -m and separate them by commas"
            value = list(value)
        elif isinstance(value, ListConfig | DictConfig):
            value = _plain(value)
        raise InputError(f"{key} must be {_describe(setting)}: {setting.meaning}; got {value!r}{hint}")


def _value(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True)


def check_classes(train_y: torch.Tensor, test_y: torch.Tensor, classes: list[str]) -> None:
    """Every class that is tested is trained, and there are at least two: otherwise accuracy means nothing."""
    if len(classes) < 2:
        raise DataError(
            f"the data set has {len(classes)} class(es) ({', '.join(classes) or 'none'}): classification needs at "
            "least two"
        )
    trained = torch.bincount(train_y, minlength=len(classes))
    tested = torch.bincount(test_y, minlength=len(classes))
    untrained = [index for index in range(len(classes)) if trained[index] == 0 and tested[index] > 0]
    if untrained:
        names = ", ".join(f"{classes[index]} ({int(tested[index])} test samples)" for index in untrained[:5])
        raise DataError(
            f"class(es) {names} have no training samples: every class that is tested must be trained"
        )


def degenerate_subset(kept: int, num_classes: int, sampler: str, rate: float) -> str | None:
    """The warning for a subset too small to hold every class, or None."""
    if kept >= num_classes:
        return None
    return (
        f"sampler={sampler} pruning_rate={rate:g} keeps {kept} sample(s) for {num_classes} classes: some classes "
        "are never trained"
    )


def warn(warnings: list[str], message: str | None) -> None:
    if message:
        log.warning(message)
        warnings.append(message)
