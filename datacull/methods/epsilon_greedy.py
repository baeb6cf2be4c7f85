"""Epsilon-greedy dynamic pruning (Raju et al., 2021)."""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..registry import register_sampler
from ..sampler_bases import RunningScoreSampler
from ..sampling import top_k
from .ucb import RAJU


@register_sampler("epsilon_greedy")
class EpsilonGreedyDataLoader(RunningScoreSampler):
    """Dynamic: keep the top samples by running mean score, and an epsilon share drawn at random from the rest.

    After Raju et al. (2021; only the abstract could be read), with defaults from an unofficial port: of the K
    kept, floor(epsilon K) are drawn uniformly outside the top K - floor(epsilon K) by an exponential running mean
    of each sample's score. Definition, defaults and differences from the paper: docs/methods.md#epsilon_greedy.
    """

    paper = RAJU

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
        by_mean = top_k(self.score_mean, self.total_num_samples, self.rng)
        rest = by_mean[exploited:]
        return torch.cat(
            [by_mean[:exploited], rest[torch.randperm(rest.numel(), generator=self.rng)[:explored]]]
        )
