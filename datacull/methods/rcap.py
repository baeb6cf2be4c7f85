"""RCAP: Robust, Class-Aware, Probabilistic dynamic dataset pruning."""

from __future__ import annotations

import math

import torch

from ..data import DCDataLoader
from ..errors import InputError
from ..importance import DCImportance, ImportanceScores
from ..logger import DCLogger
from ..registry import register_importance, register_sampler
from ..sampling import apportion, class_counts, sample_per_class, sampling_weights


def classwise_softmax(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Softmax of ``values`` inside each class (every class's entries sum to 1), vectorized over samples."""
    class_max = torch.full((num_classes,), float("-inf"), dtype=values.dtype).scatter_reduce(
        0, labels, values, "amax"
    )
    exponent = torch.exp(values - class_max[labels])
    class_sum = torch.zeros(num_classes, dtype=values.dtype).index_add_(0, labels, exponent)
    return exponent / class_sum[labels]


@register_importance("rcap")
class RCAPImportance(DCImportance):
    """Dynamic: each sample's latest loss, clipped, as a per-class softmax distribution (temperature beta).

    RCAP (Hassan et al., UAI 2025), as in its official implementation (the original DataCull): every
    sample's most recent training loss, clipped to [0, clipping_threshold] (log C by default, the loss of a
    uniform prediction, so no single noisy sample dominates); samples not trained since keep their last value,
    initially the clip value. Inside each class the clipped losses go through a softmax with temperature
    ``beta``. Each call consumes every logged epoch it has not read yet, in order (the original read exactly
    one epoch per call), so it also works when resampling every few epochs. The official example notebook
    uses beta = 1/4; larger beta samples more uniformly.
    """

    paper = "Hassan et al., RCAP: Robust, Class-Aware, Probabilistic Dynamic Dataset Pruning, UAI 2025"
    higher_is_harder = True
    requires = ("loss",)
    online = True
    state_attributes = ("sample_losses", "last_epoch_read")

    def __init__(
        self,
        dataset,
        logger_object: DCLogger,
        beta: float,
        clipping_threshold: float | None = None,
        flush: bool = True,
    ):
        if not float(beta) > 0:
            raise InputError(f"RCAP importance.beta (softmax temperature) must be > 0; got {beta}")
        super().__init__(dataset=dataset, window_size=1, logger_object=logger_object, flush=flush)
        self.beta = float(beta)
        self.labels = torch.from_numpy(self.targets)
        self.num_classes = int(self.labels.max()) + 1 if self.num_samples else 0
        self.clipping_threshold = (
            float(clipping_threshold)
            if clipping_threshold is not None
            else math.log(max(self.num_classes, 2))
        )
        self.sample_losses = torch.full((self.num_samples,), self.clipping_threshold, dtype=torch.float64)

    def compute_importance(self) -> ImportanceScores:
        self.sample_losses = self.update_latest(self.sample_losses).clamp(0.0, self.clipping_threshold)
        return self.scores(classwise_softmax(self.sample_losses / self.beta, self.labels, self.num_classes))


@register_sampler("rcap")
class RCAPDataLoader(DCDataLoader):
    """Dynamic, class-aware probabilistic: class budgets from importance mass, samples drawn by importance.

    RCAP (Hassan et al., UAI 2025), as in its official implementation: the importance mass of class c is
    the sum of its samples' scores over the samples it trained last round (all of them at first); its budget
    is proportional to sqrt(mass_c * prior_c), capped at the class size with the surplus redistributed in the
    same proportions; each class is then sampled without replacement with probabilities proportional to the
    scores. Differences from the official code, on purpose: budgets are rounded by largest remainder to the
    exact total (the official ceil overshoots by up to one per class), the surplus of a saturated class is
    taken from the remaining budget (the official loop reused the full budget), and sampling uses the
    Gumbel-top-k trick, which has the same distribution as numpy's sequential draw. Scores of other
    importances that point the other way or go negative (AUM) are drawn by hardness rank instead
    (:func:`~datacull.sampling.sampling_weights`).
    """

    paper = RCAPImportance.paper
    static_selection = False
    uses_importance = True
    needs_nonnegative_importance = True
    state_attributes = ("previous_subset",)

    def __init__(self, dataset, pruning_rate: float, **kwargs):
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        self.previous_subset = torch.ones(self.total_num_samples, dtype=torch.bool)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        scores = sampling_weights(sample_importance)
        labels = self.labels_tensor
        sizes = class_counts(labels)
        mass = torch.zeros(sizes.numel(), dtype=torch.float64).index_add_(
            0, labels, scores * self.previous_subset
        )
        prior = sizes.double() / sizes.sum()
        quotas = apportion(torch.sqrt(mass * prior), self.required_num_samples, sizes)
        chosen = sample_per_class(labels, quotas, self.rng, log_weights=torch.log(scores))
        self.previous_subset = torch.zeros(self.total_num_samples, dtype=torch.bool)
        self.previous_subset[chosen] = True
        return chosen
