"""Uniform random subset."""

from __future__ import annotations

import torch

from ..data import DCDataLoader
from ..deprecated import renamed
from ..registry import register_sampler
from ..sampling import random_subset
from .uncertainty import DEEPCORE


@register_sampler("random")
class RandomDataLoader(DCDataLoader):
    """Static uniform random subset, optionally class-stratified: the baseline every static method must beat.

    A baseline: round((1 - p) N) samples drawn uniformly without replacement, once (``class_balanced=True``:
    class-proportional quotas, uniform inside each class; ``stratified`` is its old name). Definition and defaults: docs/methods.md#random.
    """

    paper = f"random baseline, as DeepCore's Uniform ({DEEPCORE})"
    static = True
    uses_scores = False

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        class_balanced: bool = False,
        stratified: bool | None = None,
        **kwargs,
    ):
        super().__init__(dataset, pruning_rate, static=True, **kwargs)
        self.class_balanced = bool(
            renamed(type(self).__name__, "stratified", stratified, "class_balanced", class_balanced)
        )

    def compute_subset(self, sample_importance) -> torch.Tensor:
        return random_subset(self.labels_tensor, self.required_num_samples, self.rng, self.class_balanced)
