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

    The shared part of DeepCore's ``Uncertainty`` scores (entropy, margin, least confidence), read from the
    training steps of the shared scoring run instead of a separate selection model. Definition, defaults and
    differences from DeepCore: docs/methods.md#entropy.
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
