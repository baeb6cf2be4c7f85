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

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.uncertainty(torch.softmax(logits.double(), dim=-1))

    def compute_importance(self) -> ImportanceScores:
        """Each sample's uncertainty in the last epoch that trained it."""
        latest = torch.zeros(self.num_samples, dtype=torch.float64)
        ever_seen = torch.zeros(self.num_samples, dtype=torch.bool)
        for values, seen in self.epoch_values(self.trajectory_epochs(self.trajectory_length)):
            latest = torch.where(seen, values.double(), latest)
            ever_seen |= seen
        return self.scores(fill_unseen(latest, ever_seen))
