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

    GraNd (Paul et al., NeurIPS 2021) is the norm of the gradient of a sample's loss with respect to ALL
    parameters, at (or near) initialization, averaged over 10 models. This is the cheap last-layer
    approximation DeepCore uses (``grand.py``): for logits z = W h + b and cross-entropy, dL/db = p - y and
    dL/dW = (p - y) h^T, so the norm of the gradient w.r.t. (W, b) is exactly ||p - y||_2 * sqrt(1 + ||h||_2^2),
    with h the penultimate embedding. It approximates the full GraNd by the gradient of the last layer
    only, and needs no per-sample backward pass: the runner logs the embedding norm ``feature_norm`` beside
    the logits. (For a head without bias the exact last-layer value would be ||p - y|| ||h||.)

    Differences, on purpose: the paper scores 10 models at initialization and DeepCore 10 models after 40
    epochs in an evaluation pass; we average over the first ``trajectory_length`` epochs of one scoring run
    (training-step logits and embeddings, as EL2N here), so every trajectory score shares one scoring run.
    DeepCore differentiates a batch-mean loss, which inflates the scores of its last partial batch; per-sample
    p - y has no such artifact. Unseen epochs are left out of a sample's mean; never seen = neutral.
    """

    paper = "Paul, Ganguli, Dziugaite, Deep Learning on a Data Diet: Finding Important Examples Early in Training, NeurIPS 2021"
    higher_is_harder = True
    requires = ("logits", "feature_norm")

    def __init__(
        self, dataset, trajectory_length: int, logger_object: DCLogger, feature_norm_logger: DCLogger
    ):
        super().__init__(dataset, trajectory_length, logger_object)
        self.feature_norm_logger = feature_norm_logger

    def compute_importance(self) -> ImportanceScores:
        labels = self.labels_tensor

        def last_layer_gradient_norms(logits: torch.Tensor, feature_norms: torch.Tensor) -> torch.Tensor:
            return error_norms(logits, labels) * torch.sqrt(1.0 + feature_norms.double() ** 2)

        return self.scores(
            self.trajectory_mean(
                self.trajectory_length, last_layer_gradient_norms, extra_loggers=(self.feature_norm_logger,)
            )
        )
