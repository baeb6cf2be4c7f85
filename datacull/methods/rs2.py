"""Repeated Sampling of Random Subsets (RS2)."""

from __future__ import annotations

import torch

from ..data import DCDataLoader
from ..registry import register_sampler
from ..sampling import kept_fraction, random_subset


def official_round_size(num_samples: int, pruning_rate: float) -> int:
    """The official ``CoresetMethod.coreset_size``: Python's ``round(N * fraction)`` (half to even) of the kept
    fraction as typed; at least one sample."""
    return min(num_samples, max(1, round(num_samples * kept_fraction(pruning_rate))))


@register_sampler("rs2")
class RS2DataLoader(DCDataLoader):
    """Dynamic random: a fresh subset every round, walking a shuffled permutation without replacement.

    RS2 (Okanovic et al., ICLR 2024): each round takes the next round((1 - p) N) indices of a shuffled
    permutation, so every sample is seen once before any is seen twice (with replacement: an independent uniform
    subset each round). ``official_rounding`` takes the official round size, ``round(fraction * N)`` (half to
    even); ``drop_last`` trains only each round's whole batches, as the official loader does. Definition, defaults
    and differences from the paper and official code: docs/methods.md#rs2.
    """

    paper = (
        "Okanovic et al., Repeated Random Sampling for Minimizing the Time-to-Accuracy of Learning, ICLR 2024"
    )
    uses_scores = False
    state_attributes = ("permutation", "cursor")

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        sampling_with_replacement: bool = False,
        class_balanced: bool = False,
        official_rounding: bool = False,
        stratify: bool | None = None,
        **kwargs,
    ):
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        if official_rounding:
            self.required_num_samples = official_round_size(self.total_num_samples, self.pruning_rate)
        self.sampling_with_replacement = bool(sampling_with_replacement)
        # ``stratify`` is DataCull 1.0.2's name for it: code written for the original keeps working, quietly
        self.class_balanced = bool(class_balanced if stratify is None else stratify)
        self.permutation = torch.randperm(self.total_num_samples, generator=self.rng)
        self.cursor = 0

    def compute_subset(self, sample_importance) -> torch.Tensor:
        if self.sampling_with_replacement:
            return random_subset(self.labels_tensor, self.required_num_samples, self.rng, self.class_balanced)
        needed = self.required_num_samples
        taken = self.permutation[self.cursor : self.cursor + needed]
        self.cursor += taken.numel()
        if taken.numel() < needed:
            rest = torch.ones(self.total_num_samples, dtype=torch.bool)
            rest[taken] = False
            candidates = torch.nonzero(rest).squeeze(1)
            self.permutation = candidates[torch.randperm(candidates.numel(), generator=self.rng)]
            self.permutation = torch.cat([self.permutation, taken])
            self.cursor = needed - taken.numel()
            taken = torch.cat([taken, self.permutation[: self.cursor]])
        return taken
