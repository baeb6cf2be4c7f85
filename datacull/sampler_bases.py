"""Bases shared by the built-in samplers: keep the top of a ranking, or select by running score statistics."""

from __future__ import annotations

from typing import ClassVar

import torch

from .data import DCDataLoader
from .deprecated import renamed
from .errors import InputError
from .sampling import hardness, top_k


def score_direction(
    owner: DCDataLoader, higher_is_harder: bool | None, descending: bool | None
) -> bool | None:
    """A sampler's ``higher_is_harder`` (None: the direction the scores declare), given under that name or its
    old one, ``descending`` (DataCull 1.0.2's CCS keyword: accepted there without a warning)."""
    return renamed(
        type(owner).__name__,
        "descending",
        descending,
        "higher_is_harder",
        higher_is_harder,
        concept="a score's direction",
        quiet=getattr(type(owner), "descending_is_its_1_0_2_keyword", False),
    )


class RankingSampler(DCDataLoader):
    """Samplers that keep the top of a ranking: read the score direction, break ties at random."""

    uses_scores = True
    descending_is_its_1_0_2_keyword: ClassVar[bool] = False

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        static: bool,
        higher_is_harder: bool | None = None,
        descending: bool | None = None,
        **kwargs,
    ):
        self.higher_is_harder = score_direction(self, higher_is_harder, descending)
        super().__init__(dataset, pruning_rate, static=static, **kwargs)

    def hardest_first(
        self, sample_importance, default_higher_is_harder: bool, count: int | None = None
    ) -> torch.Tensor:
        """The ``count`` hardest samples (all by default), hardest first: by ``higher_is_harder`` if set, else by
        the direction the scores declare, else by ``default_higher_is_harder``."""
        hard = hardness(sample_importance, self.higher_is_harder, default_higher_is_harder)
        return top_k(hard, hard.numel() if count is None else count, self.rng)

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
        higher_is_harder: bool | None = None,
        descending: bool | None = None,
        **kwargs,
    ):
        if not 0.0 < float(ema_rate) <= 1.0:
            raise InputError(
                f"sampler.ema_rate (weight of the newest score) must be in (0, 1]; got {ema_rate}"
            )
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        self.ema_rate = float(ema_rate)
        self.higher_is_harder = score_direction(self, higher_is_harder, descending)
        self.score_mean: torch.Tensor | None = None
        self.score_variance: torch.Tensor | None = None

    def update_statistics(self, sample_importance) -> None:
        hard = hardness(sample_importance, self.higher_is_harder)
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
