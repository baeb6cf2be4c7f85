"""What every dataset shares: the run's data container, deterministic subsets, the validation split, labels and
classes read from a ``Dataset``, and the choice between resident and streamed images."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError
from .stream import StreamedSamples, default_workers

log = logging.getLogger("datacull")


@dataclass
class ImageData:
    """A run's data: inputs with int64 labels; ``val_*`` is held out of ``train_*``.

    With ``images`` (the built-in data sets, image folders, torchvision's), the inputs are uint8 ``(N, C, H, W)``
    images that the engine augments and normalizes on the device. Otherwise (a ``Dataset`` of your own, Hugging
    Face columns) they go to the model as the data set gives them: tensors, or dicts of tensors. Inputs are
    resident tensors, or :class:`~datacull.datasets.stream.StreamedSamples` read a batch at a time by DataLoader
    workers.
    """

    train_x: torch.Tensor | StreamedSamples
    train_y: torch.Tensor
    test_x: torch.Tensor | StreamedSamples
    test_y: torch.Tensor
    classes: list[str]
    val_x: torch.Tensor | StreamedSamples | None = None
    val_y: torch.Tensor | None = None
    images: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """One input's shape, ``(C, H, W)`` for images (None for dicts of tensors)."""
        if isinstance(self.train_x, StreamedSamples):
            return self.train_x.sample_shape
        return tuple(self.train_x.shape[1:])

    @property
    def in_channels(self) -> int | None:
        """Channels of ``(C, H, W)`` inputs; None for inputs of another shape."""
        shape = self.input_shape
        return int(shape[0]) if shape is not None and len(shape) == 3 else None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of ``(C, H, W)`` inputs; None for inputs of another shape."""
        shape = self.input_shape
        return (int(shape[1]), int(shape[2])) if shape is not None and len(shape) == 3 else None


def default_data_root() -> str:
    """Where downloadable datasets live unless ``dataset.root`` says otherwise (``$DATACULL_DATA_DIR``)."""
    return os.environ.get("DATACULL_DATA_DIR", str(Path.home() / ".cache" / "datacull" / "data"))


def _rank_within_class(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices grouped by class in a seeded random order, and each one's rank inside its class."""
    order = np.random.default_rng(seed).permutation(labels.shape[0])
    ranked = order[np.argsort(labels[order], kind="stable")]
    counts = np.bincount(labels)
    starts = np.cumsum(counts) - counts
    return ranked, np.arange(labels.shape[0]) - starts[labels[ranked]]


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` samples of every class (all of a smaller class), the same for a seed."""
    ranked, rank_in_class = _rank_within_class(np.asarray(labels), seed)
    return np.sort(ranked[rank_in_class < per_class])


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays: ``round(fraction * n_c)`` of each class goes to val, at least one of a
    class with two or more samples when ``fraction > 0``."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"dataset.val_fraction must be in [0, 1); got {fraction}")
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    per_class = np.floor(fraction * counts + 0.5).astype(np.int64)
    if fraction > 0:
        per_class = np.where(counts >= 2, np.clip(per_class, 1, np.maximum(counts - 1, 1)), 0)
    ranked, rank_in_class = _rank_within_class(labels, seed)
    in_val = rank_in_class < per_class[labels[ranked]]
    return np.sort(ranked[~in_val]), np.sort(ranked[in_val])


#: ``dataset.val_fraction=auto`` holds out this share of each class when a method reads a validation split.
AUTO_VAL_FRACTION = 0.1


def resolve_val_fraction(setting: Any, needed: bool) -> float:
    """``dataset.val_fraction`` as a number: ``auto`` (or null) is :data:`AUTO_VAL_FRACTION` when something reads
    a validation split and 0 otherwise."""
    if setting is None or str(setting) == "auto":
        return AUTO_VAL_FRACTION if needed else 0.0
    try:
        return float(setting)
    except (TypeError, ValueError):
        raise DataError(f"dataset.val_fraction must be auto or a number in [0, 1); got {setting!r}") from None


def hold_out_validation(data: ImageData, fraction: float, seed: int) -> ImageData:
    """A copy of ``data`` whose training split lacks ``fraction`` of each class, held out as ``val_*``.

    Only the query run that measures class accuracies (MetriQ) trains on the rest; the model being pruned
    still draws from every training sample, so a validation split never shrinks the training set.
    """
    train_index, val_index = validation_split(data.train_y.numpy(), fraction, seed)
    if train_index.size == 0:
        raise DataError(f"dataset.val_fraction={fraction} leaves no training samples for the query run")
    return replace(
        data,
        train_x=data.train_x[train_index],
        train_y=data.train_y[train_index],
        val_x=data.train_x[val_index],
        val_y=data.train_y[val_index],
    )


def subset_arrays(
    x: np.ndarray, y: np.ndarray, per_class: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if not per_class:
        return x, y
    keep = balanced_subset(y, int(per_class), seed)
    return x[keep], y[keep]


def streams(cfg: Any, count: int, sample_bytes: int) -> bool:
    """``dataset.in_memory``: true (read every image once into memory), false (stream them from disk a batch at a
    time), or auto: stream when the decoded images would exceed ``dataset.memory_limit_gb``. Says which in the log."""
    setting = str(cfg.get("in_memory", "auto")).lower()
    if setting not in ("auto", "true", "false"):
        raise DataError(f"dataset.in_memory must be auto, true or false; got {setting!r}")
    decoded_gb = count * sample_bytes / 1e9
    limit = float(cfg.get("memory_limit_gb", 32))
    streaming = setting == "false" or (setting == "auto" and decoded_gb > limit)
    if streaming:
        reason = (
            "dataset.in_memory=false"
            if setting == "false"
            else f"{decoded_gb:.1f} GB decoded > dataset.memory_limit_gb={limit:g}"
        )
        log.info("images streamed from disk (%s): DataLoader workers decode each batch", reason)
    return streaming


def configured_workers(cfg: Any) -> int:
    """``dataset.workers``: DataLoader processes reading the data (null: :func:`default_workers`; 0: none)."""
    return default_workers() if cfg.get("workers") is None else int(cfg.workers)


#: Where map-style data sets keep their labels: torchvision's ``targets``, SVHN's ``labels``, Flowers102's
#: ``_labels``.
LABEL_ATTRIBUTES = ("targets", "labels", "_labels")


def check_items(dataset: Dataset, described: str) -> None:
    """A data set's items are ``(input, label)`` pairs: one clear line if its first item is not."""
    if not len(dataset):
        raise DataError(f"{described} is empty")
    item = dataset[0]
    if not isinstance(item, tuple | list) or len(item) < 2:
        raise DataError(
            f"{described} gives items of type {type(item).__name__}; datacull reads (input, label) pairs"
        )


def _item_labels(items: list) -> torch.Tensor:
    return torch.as_tensor([item[1] for item in items])


def labels_of(dataset: Dataset, described: str, workers: int) -> torch.Tensor:
    """The data set's labels as int64: from the attribute that holds them (:data:`LABEL_ATTRIBUTES`), else read
    once from every item by ``workers`` processes (which reads the inputs too: say so)."""
    count = len(dataset)
    for attribute in LABEL_ATTRIBUTES:
        values = getattr(dataset, attribute, None)
        if values is not None and not callable(values) and len(values) == count:
            labels = torch.as_tensor(np.asarray(values))
            break
    else:
        log.info("%s has no targets attribute: reading its %d items once for their labels", described, count)
        loader = DataLoader(dataset, batch_size=256, num_workers=workers, collate_fn=_item_labels)
        labels = torch.cat(list(loader))
    if labels.dim() != 1 or labels.is_floating_point() or (labels.numel() and int(labels.min()) < 0):
        raise DataError(
            f"{described} gives labels of shape {tuple(labels.shape)} and type {labels.dtype}: datacull needs "
            "one class index (0, 1, ...) per sample"
        )
    return labels.long()


def classes_of(names: Any, *labels: torch.Tensor) -> list[str]:
    """Class names: ``names`` (a data set's ``classes``) when it names every label, else the label numbers."""
    count = max(int(split.max()) + 1 for split in labels if split.numel())
    if isinstance(names, list | tuple) and len(names) >= count:
        return [str(name) for name in names]
    return [str(label) for label in range(count)]


def assemble(
    splits: dict[str, tuple[StreamedSamples, torch.Tensor]], classes: list[str], cfg: Any, images: bool
) -> ImageData:
    """The run's data from the ``train`` and ``test`` splits of a data set: each a class-balanced subset when
    ``dataset.subset_per_class`` / ``test_subset_per_class`` say so; images read into memory unless they stream
    (:func:`streams`), other inputs always streamed (a data set's own ``__getitem__`` may draw random
    augmentations: it runs every epoch, as in a loop of your own)."""
    seed = int(cfg.get("split_seed", 0))
    chosen = {}
    for split, key in (("train", "subset_per_class"), ("test", "test_subset_per_class")):
        samples, labels = splits[split]
        if cfg.get(key):
            keep = balanced_subset(labels.numpy(), int(cfg.get(key)), seed)
            samples, labels = samples[keep], labels[keep]
        chosen[split] = (samples, labels)
    if images:
        count = sum(len(samples) for samples, _ in chosen.values())
        if not streams(cfg, count, int(np.prod(chosen["train"][0].sample_shape))):
            chosen = {split: (samples.load(), labels) for split, (samples, labels) in chosen.items()}
    (train_x, train_y), (test_x, test_y) = chosen["train"], chosen["test"]
    return ImageData(train_x, train_y, test_x, test_y, classes, images=images)
