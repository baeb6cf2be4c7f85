"""Registered datasets. Each loads into :class:`ImageData`: uint8 images resident in memory or streamed from disk,
or (``custom``, ``hf``) the inputs a data set of your own gives, streamed through DataLoader workers."""

from . import cifar, custom, digits, imagefolder, sources  # noqa: F401  (registration side effects)
from .common import DataError, ImageData, balanced_subset

__all__ = ["DataError", "ImageData", "balanced_subset"]
