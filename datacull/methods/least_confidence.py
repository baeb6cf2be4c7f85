"""Least confidence."""

from __future__ import annotations

import torch

from ..registry import register_importance
from .uncertainty import UncertaintyImportance


@register_importance("least_confidence")
class LeastConfidenceImportance(UncertaintyImportance):
    """One minus the largest predicted probability, 1 - max_k p_k; high = uncertain = hard.

    DeepCore's ``Uncertainty`` least-confidence score in its textbook probability form (DeepCore uses the raw
    largest logit), computed on each sample's latest training-step logits within the scoring run's first
    ``trajectory_length`` epochs. Definition, defaults and differences: docs/methods.md#least_confidence.
    """

    higher_is_harder = True

    def uncertainty(self, probabilities: torch.Tensor) -> torch.Tensor:
        return 1.0 - probabilities.max(dim=-1).values
