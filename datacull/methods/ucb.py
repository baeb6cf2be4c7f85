"""Upper-confidence-bound dynamic pruning (Raju et al., 2021)."""

from __future__ import annotations

import torch

from ..data import DCDataLoader
from ..errors import InputError
from ..registry import register_sampler
from ..sampling import as_score_tensor, larger_is_harder, top_k

RAJU = (
    "Raju, Daruwalla, Lipasti, Accelerating Deep Learning with Dynamic Data Pruning, arXiv 2111.12621, 2021"
)


class RunningScoreSampler(DCDataLoader):
    """Dynamic samplers that select by running per-sample statistics of the scores they are given.

    Exponential moving mean and variance (rate ``ema_rate``) of each sample's hardness, updated at each resample
    for the samples trained since the previous one. Definition: docs/methods.md#epsilon_greedy.
    """

    paper = RAJU
    static_selection = False
    uses_importance = True
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
        scores = as_score_tensor(sample_importance)
        hardness = scores if larger_is_harder(self.descending, sample_importance, True) else -scores
        if self.score_mean is None or self.subset_indices is None:
            self.score_mean, self.score_variance = hardness.clone(), torch.zeros_like(hardness)
            return
        trained = torch.zeros(self.total_num_samples, dtype=torch.bool)
        trained[self.subset_indices] = True
        deviation = hardness - self.score_mean
        rate = self.ema_rate
        self.score_variance = torch.where(
            trained, (1.0 - rate) * self.score_variance + rate * deviation**2, self.score_variance
        )
        self.score_mean = torch.where(trained, self.score_mean + rate * deviation, self.score_mean)


@register_sampler("ucb")
class UCBDataLoader(RunningScoreSampler):
    """Dynamic: keep the samples with the highest upper confidence bound, running mean + c * running std.

    After Raju et al. (2021; only the abstract could be read), with defaults from an unofficial port: keep the
    round((1 - p) N) samples with the largest running mean + ``exploration`` * running std of their score.
    Definition, defaults and differences from the paper: docs/methods.md#ucb.
    """

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
        return top_k(bound, self.required_num_samples, True, self.rng)
