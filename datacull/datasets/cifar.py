"""CIFAR-10 and CIFAR-100 through torchvision (downloaded into ``dataset.root`` when allowed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..registry import register_dataset
from .common import DataError, ImageData, default_data_root, subset_arrays


def _load_cifar(cfg: Any, dataset_class_name: str) -> ImageData:
    import torchvision

    dataset_class = getattr(torchvision.datasets, dataset_class_name)
    root = str(Path(cfg.get("root") or default_data_root()).expanduser())
    splits = {}
    for train in (True, False):
        try:
            splits[train] = dataset_class(root=root, train=train, download=bool(cfg.get("download", True)))
        except (OSError, RuntimeError) as error:  # offline, missing archive, corrupt archive
            raise DataError(
                f"cannot load {dataset_class_name} from dataset.root={root}: {error}. Put the python archive there, "
                "or use dataset=imagefolder with a folder of images"
            ) from None
    seed = int(cfg.get("split_seed", 0))
    arrays = {}
    for train, subset_key in ((True, "subset_per_class"), (False, "test_subset_per_class")):
        images = np.ascontiguousarray(splits[train].data.transpose(0, 3, 1, 2))
        labels = np.asarray(splits[train].targets, dtype=np.int64)
        arrays[train] = subset_arrays(images, labels, cfg.get(subset_key), seed)
    return ImageData(
        train_x=torch.from_numpy(arrays[True][0]),
        train_y=torch.from_numpy(arrays[True][1]),
        test_x=torch.from_numpy(arrays[False][0]),
        test_y=torch.from_numpy(arrays[False][1]),
        classes=list(splits[True].classes),
    )


@register_dataset("cifar10")
def load_cifar10(cfg: Any, cache_dir: Path) -> ImageData:
    """CIFAR-10 (Krizhevsky, 2009): 50,000 + 10,000 32x32 colour images, 10 classes, via torchvision."""
    return _load_cifar(cfg, "CIFAR10")


@register_dataset("cifar100")
def load_cifar100(cfg: Any, cache_dir: Path) -> ImageData:
    """CIFAR-100 (Krizhevsky, 2009): 50,000 + 10,000 32x32 colour images, 100 classes, via torchvision."""
    return _load_cifar(cfg, "CIFAR100")
