"""InfoBatch: unbiased dynamic pruning of well-learned samples, with loss rescaling and annealing."""

from __future__ import annotations

import math

import torch

from ..data import DCDataLoader
from ..errors import InputError
from ..registry import register_sampler
from ..sampler_bases import score_direction
from ..sampling import hardness


@register_sampler("infobatch")
class InfoBatchDataLoader(DCDataLoader):
    """Dynamic: skip a random share of the below-mean-loss samples each epoch, up-weight the rest; anneal at the end.

    InfoBatch (Qin et al., ICLR 2024): before each epoch, a random ``pruning_rate`` share of the samples scoring
    below the mean is skipped and the kept ones get loss weight 1 / (1 - p); the last (1 - delta) of the epochs
    train on all data with weight 1. The kept count varies. Definition, defaults and differences from the paper:
    docs/methods.md#infobatch.
    """

    paper = "Qin et al., InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning, ICLR 2024"
    uses_scores = True
    needs_num_epochs = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        num_epochs: int,
        delta: float = 0.875,
        higher_is_harder: bool | None = None,
        descending: bool | None = None,
        **kwargs,
    ):
        if int(num_epochs) < 1:
            raise InputError(f"InfoBatch needs num_epochs >= 1 (the length of training); got {num_epochs}")
        if not 0.0 < float(delta) <= 1.0:
            raise InputError(
                f"InfoBatch sampler.delta (share of epochs that prune) must be in (0, 1]; got {delta}"
            )
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        self.num_epochs = int(num_epochs)
        self.delta = float(delta)
        self.higher_is_harder = score_direction(self, higher_is_harder, descending)

    def pruning_active(self) -> bool:
        """Whether the coming epoch prunes (the official ``e + 1 <= num_epochs * delta``)."""
        return self.current_epoch + 1 <= self.num_epochs * self.delta + 1e-9

    def compute_subset(self, sample_importance) -> tuple[torch.Tensor, torch.Tensor]:
        everything = torch.arange(self.total_num_samples)
        if not self.pruning_active():
            return everything, torch.ones(self.total_num_samples)
        hard = hardness(sample_importance, self.higher_is_harder)
        lowest = hard.min()
        well_learned = hard < lowest + (hard - lowest).mean()
        candidates = torch.nonzero(well_learned).squeeze(1)
        num_kept = math.floor((1.0 - self.pruning_rate) * candidates.numel() + 1e-9)
        kept_candidates = candidates[torch.randperm(candidates.numel(), generator=self.rng)[:num_kept]]
        keep = ~well_learned
        keep[kept_candidates] = True
        indices = everything[keep]
        weights = torch.where(well_learned[indices], 1.0 / (1.0 - self.pruning_rate), 1.0)
        return indices, weights
