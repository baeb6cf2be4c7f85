"""A folder of the user's own images: ``root/train/<class>/*`` and ``root/test/<class>/*``.

Images are decoded once (PIL, in threads) into one uint8 tensor and cached
under the cache dir; the cache key covers every file's path, size and modification time, so changing,
adding or removing a file decodes again.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..outputs import atomic_save_npy
from ..registry import register_dataset
from .common import DataError, ImageData, balanced_subset, streams
from .files import ImageFileDataset, decode_image
from .stream import StreamedSamples

CACHE_FORMAT = 1


def _visible(entries: list[os.DirEntry]) -> list[os.DirEntry]:
    return sorted(
        (entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name
    )


def _list_split(
    root: Path, split: str, classes: list[str] | None
) -> tuple[list[str], list[str], np.ndarray, list[tuple]]:
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataError(
            f"dataset.root={root} has no '{split}/' folder: expected {root}/{split}/<class>/<image files>"
        )
    class_dirs = [entry for entry in _visible(list(os.scandir(split_dir))) if entry.is_dir()]
    found = [entry.name for entry in class_dirs]
    if not found:
        raise DataError(f"{split_dir} holds no class folders: expected {split_dir}/<class>/<image files>")
    if classes is None:
        classes = found
    elif unknown := sorted(set(found) - set(classes)):
        raise DataError(f"{split_dir} has classes missing from train/: {', '.join(unknown[:5])}")
    paths, labels, signature = [], [], []
    for entry in class_dirs:
        files = [item for item in _visible(list(os.scandir(entry.path))) if item.is_file()]
        for item in files:
            status = item.stat()
            paths.append(item.path)
            signature.append((split, entry.name, item.name, status.st_size, status.st_mtime_ns))
        labels.extend([classes.index(entry.name)] * len(files))
    if not paths:
        raise DataError(f"{split_dir} holds no image files")
    return classes, paths, np.asarray(labels, dtype=np.int64), signature


def _decode_all(paths: list[str], channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        images = list(pool.map(lambda path: decode_image(path, channels, size), paths))
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise DataError(
            f"images have different sizes {sorted(shapes)[:3]}...; set dataset.image_size=[H,W] to resize them on load"
        )
    return torch.stack(images)


@register_dataset("imagefolder")
def load_imagefolder(cfg: Any, cache_dir: Path) -> ImageData:
    """Your own images in ImageFolder layout: ``root/train/<class>/*`` and ``root/test/<class>/*``."""
    if not cfg.get("root"):
        raise DataError("dataset=imagefolder needs dataset.root=<folder holding train/ and test/>")
    root = Path(cfg.root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"dataset.root={root} does not exist or is not a folder")
    if not any(root.iterdir()):
        raise DataError(
            f"dataset.root={root} is empty: expected {root}/train/<class>/<images> and {root}/test/<class>/<images>"
        )
    channels = int(cfg.get("channels", 3))
    size = tuple(int(v) for v in cfg.image_size) if cfg.get("image_size") else None
    seed = int(cfg.get("split_seed", 0))
    classes, train_paths, train_labels, train_signature = _list_split(root, "train", None)
    _, test_paths, test_labels, test_signature = _list_split(root, "test", classes)
    selected = {}
    for split, paths, labels, per_class in (
        ("train", train_paths, train_labels, cfg.get("subset_per_class")),
        ("test", test_paths, test_labels, cfg.get("test_subset_per_class")),
    ):
        keep = balanced_subset(labels, int(per_class), seed) if per_class else np.arange(len(paths))
        selected[split] = ([paths[i] for i in keep], labels[keep], keep)
    key_source = repr(
        (
            CACHE_FORMAT,
            str(root),
            channels,
            size,
            seed,
            train_signature,
            test_signature,
            selected["train"][2].tolist(),
            selected["test"][2].tolist(),
        )
    )
    key = hashlib.sha1(key_source.encode()).hexdigest()[:20]
    first = decode_image(selected["train"][0][0], channels, size)
    if streams(cfg, len(selected["train"][0]) + len(selected["test"][0]), first.numel()):
        files = {
            split: StreamedSamples(
                ImageFileDataset(selected[split][0], selected[split][1], channels, size),
                f"{key}-{split}",
                workers=cfg.get("workers"),
            )
            for split in ("train", "test")
        }
        return ImageData(
            train_x=files["train"],
            train_y=torch.from_numpy(selected["train"][1]),
            test_x=files["test"],
            test_y=torch.from_numpy(selected["test"][1]),
            classes=classes,
        )
    cache = Path(cache_dir) / "datasets" / f"imagefolder-{key}"
    arrays = {}
    for split in ("train", "test"):
        images_path, labels_path = cache / f"{split}_x.npy", cache / f"{split}_y.npy"
        try:
            images, labels = np.load(images_path), np.load(labels_path)
            if not images.shape[0] == labels.shape[0] == len(selected[split][0]):
                raise ValueError("cached arrays disagree with the file list")
            arrays[split] = (torch.from_numpy(images), torch.from_numpy(labels))
            continue
        except (OSError, ValueError, EOFError):
            pass  # not cached yet, or a damaged entry: decode again
        paths, labels, _ = selected[split]
        images = _decode_all(paths, channels, size)
        atomic_save_npy(images_path, images.numpy())
        atomic_save_npy(labels_path, labels)
        arrays[split] = (images, torch.from_numpy(labels))
    return ImageData(
        train_x=arrays["train"][0],
        train_y=arrays["train"][1],
        test_x=arrays["test"][0],
        test_y=arrays["test"][1],
        classes=classes,
    )
