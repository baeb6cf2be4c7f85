"""Prediction entropy."""

from __future__ import annotations

import torch

from ..registry import register_importance
from .uncertainty import UncertaintyImportance


@register_importance("entropy")
class EntropyImportance(UncertaintyImportance):
    """Entropy of the predicted class distribution, -sum_k p_k log p_k; high = uncertain = hard.

    DeepCore's ``Uncertainty`` entropy score, computed on each sample's latest training-step logits within the
    scoring run's first ``trajectory_length`` epochs. Definition, defaults and differences from DeepCore:
    docs/methods.md#entropy.
    """

    higher_is_harder = True

    def uncertainty(self, probabilities: torch.Tensor) -> torch.Tensor:
        return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)
