"""Registered models. Each is built as ``cls(in_channels, image_size, num_classes, **cfg)`` and exposes
``features(x)`` (the penultimate embedding) and ``head`` (the final linear layer), so the runner can log
embedding norms for gradient-based scores. ``custom``, ``torchvision`` and ``timm`` (external.py) build any other
``nn.Module``; the runner finds its final linear layer (:func:`external.final_linear`)."""

from . import cnn, external, mlp, resnet  # noqa: F401  (registration side effects)
from .common import Classifier

__all__ = ["Classifier"]
