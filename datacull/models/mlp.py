"""A multi-layer perceptron on flattened pixels."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .common import Classifier


@register_model("mlp")
class MLP(Classifier):
    """Multi-layer perceptron on flattened pixels: the fastest model, for digits and smoke tests."""

    paper = "baseline (no reference)"

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        num_classes: int,
        hidden: int = 128,
        depth: int = 2,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size[0] * image_size[1]
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
