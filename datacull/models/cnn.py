"""A small convolutional network that trains in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .common import Classifier


def _conv_block(cin: int, cout: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@register_model("cnn")
class SmallCNN(Classifier):
    """Small CNN (conv-BN-ReLU blocks, global pooling): quick CPU runs on 32x32 images."""

    paper = "baseline (no reference)"

    def __init__(
        self, in_channels: int, image_size: tuple[int, int], num_classes: int, width: int = 32, depth: int = 3
    ):
        super().__init__()
        blocks, channels = [], in_channels
        for level in range(depth):
            out = width * 2**level
            # pool only while the feature map is still larger than 2x2
            pool = min(image_size) // 2 ** (level + 1) >= 2
            blocks.append(_conv_block(channels, out, pool))
            channels = out
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
