"""Models a user brings, imported by ``model._target_`` in the tests (the package is on the path under pytest)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Asks for the data set's input shape and classes by name; its final layer is ``classifier.2``."""

    def __init__(self, input_shape, num_classes, hidden: int = 16):
        super().__init__()
        channels, height, width = input_shape
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


class NoLinear(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(1, num_classes, 8)

    def forward(self, x):
        return self.conv(x).flatten(1)
