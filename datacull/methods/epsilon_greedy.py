"""Epsilon-greedy dynamic pruning (Raju et al., 2021)."""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..registry import register_sampler
from ..sampling import top_k
from .ucb import RunningScoreSampler


@register_sampler("epsilon_greedy")
class EpsilonGreedyDataLoader(RunningScoreSampler):
    """Dynamic: keep the top samples by running mean score, and an epsilon share drawn at random from the rest.

    After Raju et al. (2021), who propose an epsilon-greedy rule over each sample's loss statistics and
    select anew every few epochs (``sampler.resample_every``). Statistics as in
    :class:`~datacull.methods.ucb.RunningScoreSampler`; of the K = ``required_num_samples`` kept,
    floor(``epsilon`` K) are drawn uniformly from the samples outside the top K - floor(epsilon K) by running
    mean (exploration), the others are that top (exploitation; ties broken at random). With
    ``importance=loss`` (the default under this sampler) the scores are the latest training losses.

    Assumptions: the paper body could not be checked (only its abstract); the split of K, epsilon = 0.1, the
    running mean with ema_rate = 0.8 follow an unofficial port (``sodabori/dataset_pruning``), whose
    statistics are never updated through a bug (it ranks by the last loss); updating only the trained
    samples' statistics is our choice.
    """

    def __init__(self, dataset, pruning_rate: float, epsilon: float = 0.1, **kwargs):
        if not 0.0 <= float(epsilon) <= 1.0:
            raise InputError(
                f"epsilon_greedy sampler.epsilon (exploration share) must be in [0, 1]; got {epsilon}"
            )
        super().__init__(dataset, pruning_rate, **kwargs)
        self.epsilon = float(epsilon)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        self.update_statistics(sample_importance)
        explored = math.floor(self.epsilon * self.required_num_samples + 1e-9)
        exploited = self.required_num_samples - explored
        by_mean = top_k(self.score_mean, self.total_num_samples, True, self.rng)
        rest = by_mean[exploited:]
        return torch.cat(
            [by_mean[:exploited], rest[torch.randperm(rest.numel(), generator=self.rng)[:explored]]]
        )
