"""What every registered model is: a feature extractor and a final linear head."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """``forward(x) = head(features(x))``: the split the runner relies on for per-sample embedding norms."""

    head: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
