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

    Paul et al. (NeurIPS 2021): the norm of the error vector of a model early in training (CIFAR-10: epoch
    20 of 200), averaged over 10 independently trained models, in an extra evaluation pass. Keeping the
    highest scores is the paper's rule.

    Differences, on purpose: as the official CCS code (``generate_importance_score.py``), we read the
    logits of the training steps of one scoring run (train mode, augmented, before the update) and
    average the norm over its first ``trajectory_length`` epochs, instead of one checkpoint of 10 models:
    the scoring run is shared with every other trajectory score and costs one run, not ten. CCS sums over
    epochs 0..9 where we average (same ranking when every sample is trained every epoch). Epochs in which a
    sample was not trained are left out of its mean; a sample never trained is neutral (the mean score).
    """

    paper = "Paul, Ganguli, Dziugaite, Deep Learning on a Data Diet: Finding Important Examples Early in Training, NeurIPS 2021"
    higher_is_harder = True
    requires = ("logits",)

    def compute_importance(self) -> ImportanceScores:
        labels = self.labels_tensor
        return self.scores(
            self.trajectory_mean(self.trajectory_length, lambda logits: error_norms(logits, labels))
        )
