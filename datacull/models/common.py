"""What every registered model is (a feature extractor and a final linear head), and how the runner calls any model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import InputError


class Classifier(nn.Module):
    """``forward(x) = head(features(x))``: the split the runner relies on for per-sample embedding norms."""

    head: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def call_model(model: nn.Module, inputs: Any) -> torch.Tensor:
    """The model's logits for a batch. A dict of inputs goes in as keyword arguments (Hugging Face's convention);
    an output other than a tensor gives its ``logits`` (a Hugging Face model's output, or a dict)."""
    output = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    if isinstance(output, torch.Tensor):
        return output
    logits = output.get("logits") if isinstance(output, Mapping) else getattr(output, "logits", None)
    if not isinstance(logits, torch.Tensor):
        raise InputError(
            f"the model returned a {type(output).__name__}; datacull reads logits: return a tensor, or an output "
            "with .logits"
        )
    return logits
