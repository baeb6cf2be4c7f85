"""No pruning."""

from __future__ import annotations

import warnings

import torch

from ..data import DCDataLoader
from ..registry import register_sampler


@register_sampler("full")
class FullDataLoader(DCDataLoader):
    """Keeps every sample every epoch: the full-data reference run every comparison needs.

    A baseline: ``pruning_rate`` is ignored, with a warning when it is not 0, so that a sweep over pruning rates
    can include ``sampler=full`` as the reference curve. Definition and defaults: docs/methods.md#full.
    """

    paper = "baseline (full-data training, no pruning)"
    static = True
    uses_scores = False

    def __init__(self, dataset, pruning_rate: float = 0.0, **kwargs):
        super().__init__(dataset, pruning_rate, static=True, **kwargs)
        if self.pruning_rate != 0.0:
            warnings.warn(
                f"sampler=full trains on every sample; pruning_rate={pruning_rate} is ignored",
                stacklevel=2,
            )
            self.pruning_rate = 0.0
            self.required_num_samples = self.total_num_samples

    def compute_subset(self, sample_importance) -> torch.Tensor:
        return torch.arange(self.total_num_samples)
