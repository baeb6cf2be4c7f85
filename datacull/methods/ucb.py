"""Upper-confidence-bound dynamic pruning (Raju et al., 2021)."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..registry import register_sampler
from ..sampler_bases import RunningScoreSampler
from ..sampling import top_k

RAJU = (
    "Raju, Daruwalla, Lipasti, Accelerating Deep Learning with Dynamic Data Pruning, arXiv 2111.12621, 2021"
)


@register_sampler("ucb")
class UCBDataLoader(RunningScoreSampler):
    """Dynamic: keep the samples with the highest upper confidence bound, running mean + c * running std.

    After Raju et al. (2021; only the abstract could be read), with defaults from an unofficial port: keep the
    round((1 - p) N) samples with the largest running mean + ``exploration`` * running std of their score.
    Definition, defaults and differences from the paper: docs/methods.md#ucb.
    """

    paper = RAJU

    def __init__(self, dataset, pruning_rate: float, exploration: float = 1.0, **kwargs):
        if float(exploration) < 0:
            raise InputError(
                f"ucb sampler.exploration (the c of mean + c * std) must be >= 0; got {exploration}"
            )
        super().__init__(dataset, pruning_rate, **kwargs)
        self.exploration = float(exploration)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        self.update_statistics(sample_importance)
        bound = self.score_mean + self.exploration * self.score_variance.sqrt()
        return top_k(bound, self.required_num_samples, self.rng)
