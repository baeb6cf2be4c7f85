"""What every dataset shares: the in-memory container, deterministic subsets, the validation split."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError


@dataclass
class ImageData:
    """Images as uint8 ``(N, C, H, W)`` tensors with int64 labels; ``val_*`` is held out of ``train_*``."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])


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
