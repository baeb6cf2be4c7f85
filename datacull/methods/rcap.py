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

    RCAP (Hassan et al., UAI 2025), as its official code: the latest training loss clipped to [0, log C], through
    a softmax with temperature ``beta`` inside each class; the scores also carry each class's mean clipped loss,
    which the RCAP sampler budgets by. Definition, defaults and differences from the paper: docs/methods.md#rcap.
    """

    paper = "Hassan et al., RCAP: Robust, Class-Aware, Probabilistic Dynamic Dataset Pruning, UAI 2025"
    higher_is_harder = True
    requires = ("loss",)
    state_attributes = ("sample_losses", "class_losses", "last_epoch_read")

    def __init__(
        self,
        dataset,
        logger_object: DCLogger,
        beta: float,
        clipping_threshold: float | None = None,
        flush: bool = True,
        trajectory_length: int | None = None,
    ):
        if not float(beta) > 0:
            raise InputError(f"RCAP importance.beta (softmax temperature) must be > 0; got {beta}")
        super().__init__(dataset=dataset, window_size=1, logger_object=logger_object, flush=flush)
        self.trajectory_length = trajectory_length  # under a static sampler: the scoring-run epochs read
        self.beta = float(beta)
        self.labels = torch.from_numpy(self.targets)
        self.num_classes = int(self.labels.max()) + 1 if self.num_samples else 0
        self.clipping_threshold = (
            float(clipping_threshold)
            if clipping_threshold is not None
            else math.log(max(self.num_classes, 2))
        )
        self.sample_losses = torch.full((self.num_samples,), self.clipping_threshold, dtype=torch.float64)
        self.class_losses = torch.full((self.num_classes,), self.clipping_threshold, dtype=torch.float64)

    @classmethod
    def is_online(cls, **params) -> bool:
        return True

    def compute_importance(self) -> ImportanceScores:
        losses, trained = self.update_latest(self.sample_losses)
        self.sample_losses = losses.clamp(0.0, self.clipping_threshold)
        total = torch.zeros(self.num_classes, dtype=torch.float64).index_add_(
            0, self.labels[trained], self.sample_losses[trained]
        )
        count = torch.bincount(self.labels[trained], minlength=self.num_classes)
        self.class_losses = torch.where(count > 0, total / count.clamp_min(1), self.class_losses)
        return self.scores(
            classwise_softmax(self.sample_losses / self.beta, self.labels, self.num_classes),
            class_loss=self.class_losses.numpy().copy(),
        )


#: How the RCAP sampler measures a class's claim on the budget (see RCAPDataLoader).
CLASS_MASSES = ("loss", "trained_importance")


@register_sampler("rcap")
class RCAPDataLoader(DCDataLoader):
    """Dynamic, class-aware probabilistic: class budgets ∝ sqrt(mass × prior), samples drawn by importance.

    RCAP (Hassan et al., UAI 2025): class c gets a share of the budget proportional to sqrt(mass_c * prior_c),
    capped at its size with the surplus shared again and at least one sample, and its samples are drawn without
    replacement in proportion to their scores; ``class_mass`` chooses the class's mean loss (default) or the
    official code's mass. Definition, defaults and differences from the paper: docs/methods.md#rcap.
    """

    paper = RCAPImportance.paper
    uses_scores = True
    needs_nonnegative_importance = True
    state_attributes = ("previous_subset",)

    def __init__(self, dataset, pruning_rate: float, class_mass: str = "loss", **kwargs):
        if class_mass not in CLASS_MASSES:
            raise InputError(
                f"RCAP sampler.class_mass must be one of {', '.join(CLASS_MASSES)}; got {class_mass!r}"
            )
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        self.class_mass = class_mass
        self.previous_subset = torch.ones(self.total_num_samples, dtype=torch.bool)

    def class_masses(self, sample_importance, scores: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """Each class's claim on the budget, from the scores of the samples it trained last round."""
        labels = self.labels_tensor
        trained_sum = torch.zeros(sizes.numel(), dtype=torch.float64).index_add_(
            0, labels, scores * self.previous_subset
        )
        if self.class_mass == "trained_importance":
            return trained_sum
        class_loss = getattr(sample_importance, "class_loss", None)
        if class_loss is not None:
            return torch.as_tensor(class_loss, dtype=torch.float64)
        trained = torch.bincount(labels[self.previous_subset], minlength=sizes.numel())
        return trained_sum / trained.clamp_min(1)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        scores = sampling_weights(sample_importance)
        labels = self.labels_tensor
        sizes = class_counts(labels)
        mass = self.class_masses(sample_importance, scores, sizes)
        prior = sizes.double() / sizes.sum()
        quotas = apportion(torch.sqrt(mass * prior), self.required_num_samples, sizes, minimum=1)
        chosen = sample_per_class(labels, quotas, self.rng, log_weights=torch.log(scores))
        self.previous_subset = torch.zeros(self.total_num_samples, dtype=torch.bool)
        self.previous_subset[chosen] = True
        return chosen
