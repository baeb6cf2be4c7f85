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

    Each resample first updates, for every sample trained since the previous resample (all samples at the
    first one, which also initializes mean = score, variance = 0), an exponential moving mean and variance
    of its hardness (the score, negated when the importance declares that higher is easier), with rate
    ``ema_rate``: var <- (1 - a) var + a (s - mean)^2, then mean <- (1 - a) mean + a s. Samples not trained
    keep their statistics: as in a bandit, only the arms pulled give new observations (with the online
    ``loss`` importance their scores are stale anyway).
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

    After Raju et al. (2021), who propose a UCB rule over each sample's loss statistics and select anew
    every few epochs (``sampler.resample_every``). Statistics as in :class:`RunningScoreSampler`; the
    ``required_num_samples`` samples with the largest mean + ``exploration`` * sqrt(variance) are kept
    (ties broken at random). With ``importance=loss`` (the default under this sampler) the scores are the
    latest per-sample training losses; an importance that never changes (AUM) gives variance 0, and the rule
    reduces to keeping the top of that score.

    Assumptions: the paper body could not be checked (only its abstract); the exponential moving
    statistics, ema_rate = 0.8 and c = 1 follow an unofficial port (``sodabori/dataset_pruning``), which
    adds c * variance where we add c * std (a bonus in the score's own units, independent of its scale
    squared), initializes the mean at 1 where we take the first score, and, through a bug, never updates
    its statistics. Updating only the trained samples' statistics is our choice.
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
