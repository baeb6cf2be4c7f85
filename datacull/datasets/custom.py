"""Your own data set by its import path: ``dataset=custom dataset._target_=mypackage.data.Set``.

A map-style ``Dataset`` of ``(input, label)`` items, built as ``Set(train=True)`` and ``Set(train=False)``
(torchvision's convention), or the test split by a target of its own (``dataset.test._target_``); its other
arguments are the section's other keys (``+dataset.root=...``). Inputs are any tensors (images, token ids,
features) or dicts of tensors, handed to the model as they are (a dict as keyword arguments). They stream through
DataLoader workers every epoch; ``dataset.augment._target_`` names a per-sample transform of training inputs.

Labels come from the data set's ``targets`` (or ``labels``) attribute, else from reading every item once; class
names from its ``classes`` attribute, else the label numbers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch.utils.data import Dataset

from ..errors import DataError, InputError
from ..registry import import_target, register_dataset
from .common import ImageData, assemble, check_items, classes_of, configured_workers, labels_of
from .stream import StreamedSamples, signature_of

#: Keys of ``dataset=custom`` that configure the runner; every other key is an argument of the data set.
RUNNER_KEYS = {
    "name",
    "_target_",
    "test",
    "augment",
    "collate_fn",
    "workers",
    "subset_per_class",
    "test_subset_per_class",
    "val_fraction",
    "split_seed",
}


def build_transform(node: Mapping[str, Any] | None) -> Callable | None:
    """The transform that ``dataset.augment`` (``{_target_: pkg.module.Name, **arguments}``) names: a class built
    with the arguments, a function as it is (its arguments bound, if any); None for no node or ``_target_: null``."""
    node = dict(node or {})
    path = node.pop("_target_", None)
    if not path:
        if node:
            raise InputError(
                "dataset.augment for inputs other than images is a transform: "
                "dataset.augment._target_=<package.module.Transform>"
            )
        return None
    target = import_target(path, "dataset.augment._target_")
    if inspect.isclass(target):
        return target(**node)
    return functools.partial(target, **node) if node else target


def check_augment(augment: Mapping[str, Any], images: bool) -> None:
    """``dataset.augment`` fits the data: images take ``crop_padding`` and ``flip`` (on the device), other inputs a
    transform by ``_target_`` (in the DataLoader workers)."""
    if not images:
        build_transform(augment)
    elif augment.get("_target_"):
        raise InputError(
            "dataset.augment._target_ transforms inputs other than images (dataset=custom, hf); images take "
            "dataset.augment.crop_padding and dataset.augment.flip"
        )


def code_signature(target: Any) -> list:
    """The size and modification time of the file that defines ``target``: an edit to a data set's code makes
    another scoring cache entry."""
    try:
        status = Path(inspect.getsourcefile(target) or "").stat()
    except (TypeError, OSError):
        return []
    return [status.st_size, status.st_mtime_ns]


def _build_split(path: str, arguments: dict[str, Any], key: str) -> tuple[Dataset, Any]:
    """The split's data set, and the class (or function) that built it."""
    target = import_target(path, key)
    if "train" in arguments:
        parameters = inspect.signature(target).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if "train" not in parameters and not takes_any:
            raise DataError(
                f"{key}={path} takes no train= argument: give its test split as dataset.test._target_=..."
            )
    dataset = target(**arguments)
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise DataError(f"{key}={path} built a {type(dataset).__name__}, not a map-style Dataset")
    check_items(dataset, f"{key}={path}")
    return dataset, target


@register_dataset("custom")
def load_custom(cfg: Any, cache_dir: Path) -> ImageData:
    """Your own map-style Dataset of (input, label) by import path: dataset._target_=pkg.module.Class."""
    if not cfg.get("_target_"):
        raise DataError(
            "dataset=custom needs dataset._target_=<package.module.Class> (your map-style Dataset of (input, label))"
        )
    settings = OmegaConf.to_container(cfg, resolve=True)
    arguments = {key: value for key, value in settings.items() if key not in RUNNER_KEYS}
    test = dict(settings.get("test") or {})
    test_path = test.pop("_target_", None)
    if test_path:
        targets = {
            "train": (cfg._target_, arguments, "dataset._target_"),
            "test": (test_path, test, "dataset.test._target_"),
        }
    else:  # torchvision's convention
        targets = {
            split: (cfg._target_, {**arguments, "train": split == "train"}, "dataset._target_")
            for split in ("train", "test")
        }
    collate = import_target(cfg.collate_fn, "dataset.collate_fn") if cfg.get("collate_fn") else None
    workers = configured_workers(cfg)
    splits, datasets = {}, {}
    for split, (path, split_arguments, key) in targets.items():
        dataset, target = _build_split(path, split_arguments, key)
        # the scoring cache's key: the data set's import path, arguments and code (its labels are hashed too)
        identity = signature_of(path, split_arguments, code_signature(target))
        samples = StreamedSamples(dataset, identity, collate, workers)
        splits[split] = (samples, labels_of(dataset, f"{key}={path} ({split})", workers))
        datasets[split] = dataset
    classes = classes_of(getattr(datasets["train"], "classes", None), splits["train"][1], splits["test"][1])
    return assemble(splits, classes, cfg, images=False)
