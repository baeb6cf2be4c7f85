"""Registered datasets. Each loads into :class:`ImageData`: uint8 image tensors resident in memory."""

from . import cifar, digits, imagefolder  # noqa: F401  (registration side effects)
from .common import DataError, ImageData, balanced_subset

__all__ = ["DataError", "ImageData", "balanced_subset"]
