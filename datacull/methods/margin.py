"""Prediction margin."""

from __future__ import annotations

import torch

from ..registry import register_importance
from .uncertainty import UncertaintyImportance


@register_importance("margin")
class MarginImportance(UncertaintyImportance):
    """Top-1 minus top-2 predicted probability; low = uncertain = hard.

    DeepCore's ``Uncertainty`` margin score (the label is not used), computed on each sample's latest
    training-step logits within the scoring run's first ``trajectory_length`` epochs. Definition, defaults and
    differences from DeepCore: docs/methods.md#margin.
    """

    higher_is_harder = False

    def uncertainty(self, probabilities: torch.Tensor) -> torch.Tensor:
        if probabilities.shape[-1] < 2:
            return torch.ones(probabilities.shape[0], dtype=probabilities.dtype)
        top_two = probabilities.topk(2, dim=-1).values
        return top_two[:, 0] - top_two[:, 1]
