"""Prediction entropy."""

from __future__ import annotations

import torch

from ..registry import register_importance
from .uncertainty import UncertaintyImportance


@register_importance("entropy")
class EntropyImportance(UncertaintyImportance):
    """Entropy of the predicted class distribution, -sum_k p_k log p_k; high = uncertain = hard.

    DeepCore's ``Uncertainty(selection_method="Entropy")`` (see :class:`UncertaintyImportance` for which
    logits are scored). Differences: DeepCore scores sum_k p_k log(p_k + 1e-6), the negative entropy with a
    guard, and keeps its lowest values; we return the entropy itself (0 log 0 = 0, no guard needed) and
    declare that higher is harder, which keeps the same samples.
    """

    higher_is_harder = True

    def uncertainty(self, probabilities: torch.Tensor) -> torch.Tensor:
        return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)
