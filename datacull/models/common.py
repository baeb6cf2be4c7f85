"""Model construction from config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..registry import get_model


class Classifier(nn.Module):
    """``forward(x) = head(features(x))``: the split the runner relies on for per-sample embedding norms."""

    head: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(cfg: Any, in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    params = {key: value for key, value in dict(cfg).items() if key != "name"}
    return get_model(cfg.name)(
        in_channels=in_channels, image_size=tuple(image_size), num_classes=num_classes, **params
    )
