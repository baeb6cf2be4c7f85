"""Keep the top of a score ranking."""

from __future__ import annotations

import torch

from ..registry import register_sampler
from ..sampling import first_per_class, proportional_quotas
from .tdds import RankingSampler


@register_sampler("topk")
class TopKDataLoader(RankingSampler):
    """Static: keep the hardest fraction by the score's declared direction (or the easiest); optionally per class.

    The selection rule of the score-based static baselines (EL2N/GraNd ``keep_max_scores`` in Paul et al.,
    forgetting, DeepCore's score methods): rank by hardness (``descending`` if set, else the direction the
    importance declares, else larger = harder) and keep the ``required_num_samples`` hardest, ties broken at
    random. ``easiest=True`` keeps the other end (e.g. cartography's "easy-to-learn", or pruning the hardest
    at very high rates). ``class_balanced=True`` gives each class a share proportional to its size and keeps
    the hardest (or easiest) inside each class, as DeepCore's ``balance`` mode.

    Differences: DeepCore's balanced mode keeps round(fraction N_c) per class, whose total can miss
    round(fraction N); we apportion by largest remainder to the exact total. Ties are broken at random, where
    the official codes use an unstable argsort.
    """

    paper = "Paul, Ganguli, Dziugaite, Deep Learning on a Data Diet, NeurIPS 2021 (keep the highest scores)"
    static_selection = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        easiest: bool = False,
        class_balanced: bool = False,
        descending: bool | None = None,
        **kwargs,
    ):
        super().__init__(dataset, pruning_rate, static=True, descending=descending, **kwargs)
        self.easiest = bool(easiest)
        self.class_balanced = bool(class_balanced)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        order = self.hardest_first(sample_importance, default_direction=True)
        if self.easiest:
            order = order.flip(0)
        if not self.class_balanced:
            return order[: self.required_num_samples]
        quotas = proportional_quotas(self.labels_tensor, self.required_num_samples)
        return first_per_class(order, self.labels_tensor, quotas)
