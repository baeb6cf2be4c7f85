"""Least confidence."""

from __future__ import annotations

import torch

from ..registry import register_importance
from .uncertainty import UncertaintyImportance


@register_importance("least_confidence")
class LeastConfidenceImportance(UncertaintyImportance):
    """One minus the largest predicted probability, 1 - max_k p_k; high = uncertain = hard.

    DeepCore's ``Uncertainty(selection_method="LeastConfidence")`` with the textbook definition. Difference:
    DeepCore scores the raw largest logit, max_k z_k (low = uncertain), which changes when all logits shift
    by a constant although the prediction does not; we use the probability, so the score lies in
    [0, 1 - 1/C] and depends only on the prediction. See :class:`UncertaintyImportance` for which logits
    are scored.
    """

    higher_is_harder = True

    def uncertainty(self, probabilities: torch.Tensor) -> torch.Tensor:
        return 1.0 - probabilities.max(dim=-1).values
