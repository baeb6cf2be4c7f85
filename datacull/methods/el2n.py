"""Error L2-norm (EL2N)."""

from __future__ import annotations

import torch

from ..importance import ImportanceScores, TrajectoryImportance
from ..registry import register_importance


def error_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(label)||_2 per sample: the gradient of the loss w.r.t. the logits, in norm."""
    error = torch.softmax(logits.double(), dim=-1)
    error[torch.arange(labels.numel()), labels] -= 1.0
    return error.norm(dim=-1)


@register_importance("el2n")
class EL2NImportance(TrajectoryImportance):
    """Error L2-norm: ||softmax(logits) - onehot(y)||_2 averaged over the first epochs of training; high = hard.

    Paul et al. (NeurIPS 2021): the norm of the error vector, here of each training step's logits averaged over
    the scoring run's first ``trajectory_length`` epochs (as the official CCS code reads epochs 0-9); keeping the
    highest is the paper's rule. Definition, defaults and differences from the paper: docs/methods.md#el2n.
    """

    paper = "Paul, Ganguli, Dziugaite, Deep Learning on a Data Diet: Finding Important Examples Early in Training, NeurIPS 2021"
    higher_is_harder = True
    requires = ("logits",)

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return error_norms(logits, labels)

    def compute_importance(self) -> ImportanceScores:
        return self.scores(self.trajectory_mean(self.trajectory_length, lambda norm: norm))
