"""ResNet-18, CIFAR variant (He et al., CVPR 2016): 3x3 stem, no max-pool, as in the pruning papers' code."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .common import Classifier


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@register_model("resnet18")
class ResNet18(Classifier):
    """ResNet-18 for small images: 3x3 stride-1 stem and no max-pool (the CIFAR variant)."""

    paper = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        layers, channels = [], width
        for level, blocks in enumerate((2, 2, 2, 2)):
            out = width * 2**level
            # downsample while the map is larger than 1x1, so tiny images (digits' 8x8) still work
            stride = 2 if level > 0 and min(image_size) // 2**level >= 1 else 1
            layers += [BasicBlock(channels, out, stride)] + [
                BasicBlock(out, out, 1) for _ in range(blocks - 1)
            ]
            channels = out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x)))
