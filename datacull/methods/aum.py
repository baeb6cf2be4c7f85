"""Area Under the Margin (AUM)."""

from __future__ import annotations

import torch

from ..importance import ImportanceScores, TrajectoryImportance
from ..logger import DCLogger
from ..registry import register_importance


def margins(logits: torch.Tensor, labels: torch.Tensor, probability_space: bool) -> torch.Tensor:
    """Assigned-class value minus the largest other value, per sample, for logits (or softmax probabilities).

    Overwrites ``logits`` (the caller's per-epoch buffer): the work is done in place, without allocating
    (N, C) temporaries, and with one reduction for the largest value. In probability space the softmax is
    never normalized element-wise: with z_o the largest other logit and m = max(z_y, z_o) the largest logit,
    p_y - max_{c != y} p_c = (exp(z_y - m) - exp(z_o - m)) / sum_c exp(z_c - m) (softmax is monotone).
    """
    assigned = logits.gather(-1, labels[:, None]).squeeze(-1)
    others = logits.scatter_(-1, labels[:, None], float("-inf")).amax(dim=-1)
    if not probability_space:
        return assigned - others
    top = torch.maximum(assigned, others)
    exp_assigned = (assigned - top).exp_()
    normalizer = (
        logits.sub_(top[:, None]).exp_().sum(dim=-1) + exp_assigned
    )  # the assigned entry is -inf here
    return (exp_assigned - (others - top).exp_()) / normalizer


@register_importance("aum")
class AUMImportance(TrajectoryImportance):
    """Area under the margin: mean over epochs of (assigned logit - largest other logit); low = hard.

    Pleiss et al. (NeurIPS 2020): the margin of each training step's logits (or, with ``probability_space=True``,
    of its softmax probabilities, as the official CCS code), averaged over the first ``trajectory_length`` epochs
    of the scoring run (null: all of it). Definition, defaults and differences from the paper:
    docs/methods.md#aum.
    """

    paper = "Pleiss et al., Identifying Mislabeled Data using the Area Under the Margin Ranking, NeurIPS 2020"
    higher_is_harder = False
    requires = ("logits",)

    def __init__(
        self,
        dataset,
        trajectory_length: int | None,
        logger_object: DCLogger,
        probability_space: bool = False,
        reduced: bool = False,
    ):
        super().__init__(dataset, trajectory_length, logger_object, reduced)
        self.probability_space = bool(probability_space)

    def reduce_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return margins(logits, labels, self.probability_space)

    @classmethod
    def reducer_key(cls, **params) -> str:
        return f"AUMImportance(probability_space={bool(params.get('probability_space', False))})"

    def compute_importance(self) -> ImportanceScores:
        return self.scores(self.trajectory_mean(self.trajectory_length, lambda margin: margin))
