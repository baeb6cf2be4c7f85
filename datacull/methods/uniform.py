"""All-equal scores."""

from __future__ import annotations

import torch

from ..importance import DCImportance, ImportanceScores
from ..registry import register_importance


@register_importance("uniform")
class UniformImportance(DCImportance):
    """All-equal scores: reads nothing, ranks nothing; for samplers that ignore scores, and as a control.

    A baseline: every sample scores 1 with no declared direction, so ranking samplers keep a uniformly random
    subset and proportional ones draw uniformly. Definition: docs/methods.md#uniform.
    """

    paper = "baseline (all samples equally important; no reference)"
    higher_is_harder = None
    requires = ()

    def __init__(self, dataset):
        super().__init__(dataset=dataset, window_size=1, logger_object=None)

    def compute_importance(self) -> ImportanceScores:
        return self.scores(torch.ones(self.num_samples, dtype=torch.float64))
