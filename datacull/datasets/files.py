"""Images that stay on disk: decoded on demand, a batch at a time, by DataLoader workers (the streaming data path).

:class:`ImageFiles` stands where an in-memory dataset has a uint8 ``(N, C, H, W)`` tensor: it has the same
``shape``, indexing it with an index array gives the files of that subset, and :meth:`ImageFiles.decode` reads a
batch. The engine walks an epoch's batches through :func:`stream_batches`, whose workers decode ahead of training.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError


def decode_image(path: str, channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    """One image file as a uint8 (C, H, W) tensor, resized to ``size`` when given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(
            f"{path} is not a readable image ({type(error).__name__}); remove or replace it"
        ) from None
    return torch.from_numpy(array.reshape(*array.shape[:2], -1).transpose(2, 0, 1).copy())


class ImageFiles:
    """``N`` image files of one split, decoded on demand to uint8 ``(C, H, W)`` (all of one size, or resized)."""

    dtype = torch.uint8

    def __init__(self, paths: Sequence[str], channels: int, size: tuple[int, int] | None, signature: str):
        self.paths = list(paths)
        self.channels = int(channels)
        self.size = size
        self.signature = signature  # of the files' names, sizes and modification times: a fingerprint
        first = (
            decode_image(self.paths[0], self.channels, size) if self.paths else torch.zeros(channels, 1, 1)
        )
        self.shape = torch.Size((len(self.paths), *first.shape))

    def __len__(self) -> int:
        return len(self.paths)

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def element_size(self) -> int:
        return 1

    def __getitem__(self, index: Any) -> ImageFiles:
        """The files of a subset (an index array or tensor), as another :class:`ImageFiles`."""
        index = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).reshape(
            -1
        )
        paths = [self.paths[i] for i in index]
        digest = hashlib.sha1((self.signature + index.tobytes().hex()).encode()).hexdigest()
        subset = object.__new__(ImageFiles)
        subset.paths, subset.channels, subset.size, subset.signature = paths, self.channels, self.size, digest
        subset.shape = torch.Size((len(paths), *self.shape[1:]))
        return subset

    def decode(self, index: Sequence[int]) -> torch.Tensor:
        """The images ``index`` as one uint8 ``(B, C, H, W)`` tensor."""
        images = [decode_image(self.paths[i], self.channels, self.size) for i in index]
        shapes = {tuple(image.shape) for image in images}
        if len(shapes) > 1:
            raise DataError(f"images have different sizes {sorted(shapes)[:3]}; set dataset.image_size=[H,W]")
        return torch.stack(images) if images else torch.zeros((0, *self.shape[1:]), dtype=torch.uint8)


class _Batches(Dataset):
    """Batch number -> the decoded batch: what DataLoader workers compute ahead of training."""

    def __init__(self, files: ImageFiles, labels: torch.Tensor, batches: list[list[int]]):
        self.files, self.labels, self.batches = files, labels, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, number: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.batches[number]
        return self.files.decode(index), self.labels[index]


def stream_batches(
    files: ImageFiles, labels: torch.Tensor, batches: list[torch.Tensor], device: torch.device, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches (lists of sample indices), decoded by ``workers`` processes ahead of use, in order, pinned and
    copied asynchronously to ``device``."""
    source = _Batches(files, labels.cpu(), [batch.cpu().tolist() for batch in batches])
    loader = DataLoader(
        source,
        batch_size=None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    for images, targets in loader:
        yield images.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)
