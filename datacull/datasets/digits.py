"""scikit-learn's bundled handwritten digits: 1,797 8x8 grey images, 10 classes, no download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..registry import register_dataset
from .common import ImageData, subset_arrays, validation_split


@register_dataset("digits")
def load_digits(cfg: Any, cache_dir: Path) -> ImageData:
    """Handwritten digits bundled with scikit-learn (offline); a fixed stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train_index, test_index = validation_split(labels, 0.2, seed=1234)
    seed = int(cfg.get("split_seed", 0))
    train_x, train_y = subset_arrays(
        images[train_index], labels[train_index], cfg.get("subset_per_class"), seed
    )
    test_x, test_y = subset_arrays(
        images[test_index], labels[test_index], cfg.get("test_subset_per_class"), seed
    )
    return ImageData(
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y),
        test_x=torch.from_numpy(test_x),
        test_y=torch.from_numpy(test_y),
        classes=[str(label) for label in range(10)],
    )
