"""Keep the top of a score ranking."""

from __future__ import annotations

import torch

from ..registry import register_sampler
from ..sampler_bases import RankingSampler
from ..sampling import first_per_class, proportional_quotas


@register_sampler("topk")
class TopKDataLoader(RankingSampler):
    """Static: keep the hardest fraction by the score's declared direction (or the easiest); optionally per class.

    The selection rule of the score-based static baselines (data-diet's ``keep_max_scores``, forgetting, DeepCore's
    score methods): keep the round((1 - p) N) hardest, ties broken at random; ``easiest`` keeps the other end,
    ``class_balanced`` uses class-proportional quotas as DeepCore's ``balance`` mode. Definition and defaults:
    docs/methods.md#topk.
    """

    paper = "Paul, Ganguli, Dziugaite, Deep Learning on a Data Diet, NeurIPS 2021 (keep the highest scores)"
    static = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        easiest: bool = False,
        class_balanced: bool = False,
        **kwargs,
    ):
        super().__init__(dataset, pruning_rate, static=True, **kwargs)  # higher_is_harder: RankingSampler's
        self.easiest = bool(easiest)
        self.class_balanced = bool(class_balanced)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        order = self.hardest_first(sample_importance, default_higher_is_harder=True)
        if self.easiest:
            order = order.flip(0)
        if not self.class_balanced:
            return order[: self.required_num_samples]
        quotas = proportional_quotas(self.labels_tensor, self.required_num_samples)
        return first_per_class(order, self.labels_tensor, quotas)
