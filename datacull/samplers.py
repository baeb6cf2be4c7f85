"""Bases shared by the built-in samplers: keep the top of a ranking, or select by running score statistics."""

from __future__ import annotations

import torch

from .data import DCDataLoader
from .errors import InputError
from .sampling import as_score_tensor, hardness, higher_is_harder, top_k


class RankingSampler(DCDataLoader):
    """Samplers that keep the top of a ranking: read the score direction, break ties at random."""

    uses_scores = True

    def __init__(self, dataset, pruning_rate: float, static: bool, descending: bool | None = None, **kwargs):
        self.descending = descending
        super().__init__(dataset, pruning_rate, static=static, **kwargs)

    def hardest_first(
        self, sample_importance, default_higher_is_harder: bool, count: int | None = None
    ) -> torch.Tensor:
        """The ``count`` hardest samples (all by default), hardest first: by ``descending`` if set, else by the
        direction the scores declare, else by ``default_higher_is_harder``."""
        scores = as_score_tensor(sample_importance)
        largest = higher_is_harder(sample_importance, self.descending, default_higher_is_harder)
        return top_k(scores, scores.numel() if count is None else count, largest, self.rng)

    def keep_hardest(self, sample_importance, default_higher_is_harder: bool) -> torch.Tensor:
        return self.hardest_first(sample_importance, default_higher_is_harder, self.required_num_samples)


class RunningScoreSampler(DCDataLoader):
    """Dynamic samplers that select by running per-sample statistics of the scores they are given.

    Exponential moving mean and variance (rate ``ema_rate``) of each sample's hardness, updated at each resample
    for the samples trained since the previous one. Definition: docs/methods.md#epsilon_greedy.
    """

    uses_scores = True
    state_attributes = ("score_mean", "score_variance")

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        ema_rate: float = 0.8,
        descending: bool | None = None,
        **kwargs,
    ):
        if not 0.0 < float(ema_rate) <= 1.0:
            raise InputError(
                f"sampler.ema_rate (weight of the newest score) must be in (0, 1]; got {ema_rate}"
            )
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        self.ema_rate = float(ema_rate)
        self.descending = descending
        self.score_mean: torch.Tensor | None = None
        self.score_variance: torch.Tensor | None = None

    def update_statistics(self, sample_importance) -> None:
        hard = hardness(sample_importance, self.descending)
        if self.score_mean is None or self.subset_indices is None:
            self.score_mean, self.score_variance = hard.clone(), torch.zeros_like(hard)
            return
        trained = torch.zeros(self.total_num_samples, dtype=torch.bool)
        trained[self.subset_indices] = True
        deviation = hard - self.score_mean
        rate = self.ema_rate
        self.score_variance = torch.where(
            trained, (1.0 - rate) * self.score_variance + rate * deviation**2, self.score_variance
        )
        self.score_mean = torch.where(trained, self.score_mean + rate * deviation, self.score_mean)
