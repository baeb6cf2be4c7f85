"""Prediction uncertainty scores (DeepCore's ``Uncertainty``): the shared part of entropy, margin, least confidence."""

from __future__ import annotations

import torch

from ..importance import ImportanceScores, TrajectoryImportance, fill_unseen

DEEPCORE = (
    "Guo, Zhao, Bai, DeepCore: A Comprehensive Library for Coreset Selection in Deep Learning, DEXA 2022"
)


class UncertaintyImportance(TrajectoryImportance):
    """Scores the softmax probabilities of each sample's latest logits within the first ``trajectory_length``
    epochs of the scoring run; subclasses say how (``uncertainty``).

    DeepCore trains a model for ``selection_epochs`` (default 40) and scores it in an extra evaluation
    pass. Here the scoring model trains for ``trajectory_length`` epochs and each sample is scored by the
    logits of the last of those epochs that trained it (the training step: train mode, augmented, before
    the update), so no extra pass is needed and the scoring run is shared with the other trajectory scores.
    A sample never trained is neutral (the mean score). Labels are not used, as in DeepCore.

    DeepCore's two selection paths keep opposite ends (its class-balanced path the most uncertain, the
    other the most confident, issue PatrickZH/DeepCore#11); here every score declares its direction and
    the samplers keep the most uncertain unless told otherwise.
    """

    paper = DEEPCORE
    requires = ("logits",)

    def uncertainty(self, probabilities: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute_importance(self) -> ImportanceScores:
        epochs = self.trajectory_epochs(self.trajectory_length)
        empty = torch.zeros(self.num_samples, 1, dtype=torch.float64)
        logits, seen = self.latest_values(epochs, empty)
        return self.scores(fill_unseen(self.uncertainty(torch.softmax(logits, dim=-1)), seen))
