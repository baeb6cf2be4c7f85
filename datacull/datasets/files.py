"""Images as uint8 ``(C, H, W)`` tensors: decoded from files, or converted from the PIL images a data set gives.

:class:`ImageFileDataset` is a map-style data set of image files that stay on disk; wrapped in
:class:`~datacull.datasets.stream.StreamedSamples` its images are decoded a batch at a time by DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError


def pil_to_uint8(image: Any, channels: int | None, size: tuple[int, int] | None) -> torch.Tensor:
    """A PIL image as a uint8 ``(C, H, W)`` tensor: RGB for ``channels=3``, grey for 1; ``None`` keeps a grey image
    grey and makes anything else RGB. Resized to ``size`` (H, W) when given."""
    from PIL import Image

    if channels is None:
        channels = 1 if image.mode in ("L", "1") else 3
    image = image.convert("RGB" if channels == 3 else "L")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image)
    return torch.from_numpy(array.reshape(*array.shape[:2], -1).transpose(2, 0, 1).copy())


def decode_image(path: str, channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    """One image file as a uint8 (C, H, W) tensor, resized to ``size`` when given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return pil_to_uint8(image, channels, size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(
            f"{path} is not a readable image ({type(error).__name__}); remove or replace it"
        ) from None


class ImageFileDataset(Dataset):
    """Image files and their labels: item ``i`` is ``(uint8 (C, H, W) image, label)``, decoded when read."""

    def __init__(self, paths: Sequence[str], labels: np.ndarray, channels: int, size: tuple[int, int] | None):
        self.paths, self.targets = list(paths), np.asarray(labels)
        self.channels, self.size = int(channels), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return decode_image(self.paths[index], self.channels, self.size), int(self.targets[index])
