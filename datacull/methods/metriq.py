"""MetriQ: class-wise keep densities from validation error."""

from __future__ import annotations

import numpy as np
import torch

from ..data import DCDataLoader
from ..errors import InputError
from ..registry import register_sampler
from ..sampling import apportion, class_counts, kept_fraction, sample_per_class


@register_sampler("metriq")
class MetriQDataLoader(DCDataLoader):
    """Static, class-wise random: each class keeps a share proportional to its validation error.

    MetriQ (Vysogorets et al., 2024; "Random+MetriQ"): class keep densities proportional to 1 - acc_c, saturated
    classes capped and their surplus shared, samples uniform inside each class; the accuracies come from a query
    run on the training set minus a validation split, never from the test set. ``official_rounding`` keeps the
    official count, int(N (1 - p)). Definition, defaults and differences from the paper and official code:
    docs/methods.md#metriq.
    """

    paper = "Vysogorets et al., Robust Data Pruning: Uncovering and Overcoming Implicit Bias (MetriQ), arXiv 2404.05579, 2024"
    static = True
    uses_scores = False
    needs_class_accuracy = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        class_wise_acc=None,
        query_epochs: int | None = None,
        official_rounding: bool = False,
        **kwargs,
    ):
        super().__init__(dataset, pruning_rate, static=True, **kwargs)
        if official_rounding:
            # the official Linear schedule's int(N * (start_frac - |final_frac - start_frac|)), in floating point
            fraction = kept_fraction(self.pruning_rate)
            self.required_num_samples = max(1, int(self.total_num_samples * (1.0 - abs(fraction - 1.0))))
        self.query_epochs = None if query_epochs is None else int(query_epochs)
        self.class_wise_acc: np.ndarray | None = None
        if class_wise_acc is not None:
            self.set_class_wise_acc(class_wise_acc)

    def set_class_wise_acc(self, class_wise_acc) -> None:
        """Set the per-class validation accuracies (the runner does so once its scoring run measured them)."""
        accuracy = np.asarray(class_wise_acc, dtype=np.float64).reshape(-1)
        num_classes = int(self.labels_tensor.max()) + 1 if self.total_num_samples else 0
        if accuracy.shape[0] != num_classes:
            raise InputError(
                f"MetriQ class_wise_acc has {accuracy.shape[0]} entries but the dataset has {num_classes} classes"
            )
        if not np.all((accuracy >= 0) & (accuracy <= 1)):
            raise InputError(
                f"MetriQ class_wise_acc values must lie in [0, 1]; got {accuracy.round(4).tolist()}"
            )
        self.class_wise_acc = accuracy

    def class_quotas(self) -> torch.Tensor:
        if self.class_wise_acc is None:
            raise InputError(
                "MetriQ needs class_wise_acc (per-class validation accuracy) before it can select"
            )
        sizes = class_counts(self.labels_tensor, len(self.class_wise_acc))
        error = torch.from_numpy(1.0 - self.class_wise_acc)
        return apportion(error * sizes, self.required_num_samples, sizes)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        return sample_per_class(self.labels_tensor, self.class_quotas(), self.rng)
