"""Dataset cartography: confidence or variability of the gold-label probability."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..importance import ImportanceScores, TrajectoryImportance, fill_unseen
from ..logger import DCLogger
from ..registry import register_importance

METRICS = ("confidence", "variability")


@register_importance("cartography")
class CartographyImportance(TrajectoryImportance):
    """Mean (confidence; low = hard) or population std (variability; high = ambiguous) of p(gold) across epochs.

    Dataset cartography (Swayamdipta et al., EMNLP 2020): statistics of the label's softmax probability over the
    training steps of the scoring run's first ``trajectory_length`` epochs (null: all); samplers keep the
    ambiguous (variability) or hard-to-learn (confidence) end. Definition, defaults and differences from the
    paper: docs/methods.md#cartography.
    """

    paper = "Swayamdipta et al., Dataset Cartography: Mapping and Diagnosing Datasets with Training Dynamics, EMNLP 2020"
    higher_is_harder = True  # for the default metric, variability; confidence sets False on the instance
    requires = ("logits",)

    def __init__(
        self,
        dataset,
        trajectory_length: int | None,
        logger_object: DCLogger,
        metric: str = "variability",
        reduced: bool = False,
    ):
        if metric not in METRICS:
            raise InputError(
                f"cartography importance.metric must be one of {', '.join(METRICS)}; got {metric!r}"
            )
        super().__init__(dataset, trajectory_length, logger_object, reduced)
        self.metric = metric
        self.higher_is_harder = metric == "variability"

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """p(gold) of each sample."""
        return torch.softmax(logits.double(), dim=-1).gather(-1, labels[:, None]).squeeze(-1)

    def compute_importance(self) -> ImportanceScores:
        def gold_probability_moments(gold: torch.Tensor) -> torch.Tensor:
            gold = gold.double()
            return torch.stack([gold, gold * gold], dim=-1)

        total, count = self.trajectory_sums(self.trajectory_length, gold_probability_moments)
        moments = total / count.clamp_min(1)[:, None]
        confidence = moments[:, 0]
        if self.metric == "confidence":
            return self.scores(fill_unseen(confidence, count > 0))
        variability = (moments[:, 1] - confidence**2).clamp_min(0.0).sqrt()
        return self.scores(fill_unseen(variability, count > 0))
