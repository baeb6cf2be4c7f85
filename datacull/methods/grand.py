"""Gradient norm (GraNd), last-layer approximation."""

from __future__ import annotations

import torch

from ..importance import ImportanceScores, TrajectoryImportance
from ..logger import DCLogger
from ..registry import register_importance
from .el2n import error_norms


@register_importance("grand")
class GraNdImportance(TrajectoryImportance):
    """Gradient norm of the per-sample loss w.r.t. the last layer, ||p - y|| sqrt(1 + ||h||^2); high = hard.

    GraNd (Paul et al., NeurIPS 2021) in DeepCore's last-layer approximation, exact for a final linear layer with
    bias (h: its input), averaged over the training steps of the scoring run's first ``trajectory_length`` epochs.
    Definition, defaults and differences from the paper: docs/methods.md#grand.
    """

    paper = "Paul, Ganguli, Dziugaite, Deep Learning on a Data Diet: Finding Important Examples Early in Training, NeurIPS 2021"
    higher_is_harder = True
    requires = ("logits", "feature_norm")

    def __init__(
        self,
        dataset,
        trajectory_length: int,
        logger_object: DCLogger,
        feature_norm_logger: DCLogger,
        reduced: bool = False,
    ):
        super().__init__(dataset, trajectory_length, logger_object, reduced)
        self.feature_norm_logger = feature_norm_logger

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return error_norms(logits, labels)

    def compute_importance(self) -> ImportanceScores:
        def last_layer_gradient_norms(error_norm: torch.Tensor, feature_norms: torch.Tensor) -> torch.Tensor:
            return error_norm * torch.sqrt(1.0 + feature_norms.double() ** 2)

        return self.scores(
            self.trajectory_mean(
                self.trajectory_length, last_layer_gradient_norms, extra_loggers=(self.feature_norm_logger,)
            )
        )
