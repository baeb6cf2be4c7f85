"""Temporal Dual-Depth Scoring (TDDS)."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..importance import DCImportance, ImportanceScores
from ..logger import DCLogger
from ..registry import register_importance, register_sampler
from ..samplers import RankingSampler


def kl_terms(probabilities: torch.Tensor) -> torch.Tensor:
    """Per consecutive epoch pair, sum_c |p_{t+1} (log(p_{t+1} + 1e-8) - log(p_t + 1e-8))|: shape (T - 1, N).

    The absolute value is taken per class, before the sum, and the 1e-8 is inside the log, both as in the
    official ``importance_evaluation.py``. Computed in the dtype of ``probabilities``, in place where possible.
    """
    log_p = probabilities.add(1e-8).log_()
    return (log_p[1:] - log_p[:-1]).mul_(probabilities[1:]).abs_().sum(dim=-1)


@register_importance("tdds")
class TDDSImportance(DCImportance):
    """Temporal dual-depth score: variability of per-epoch KL-like prediction changes, late windows weighted most.

    TDDS (Zhang et al., CVPR 2024), as the official code: per epoch pair sum_c |p_{t+1} log(p_{t+1}/p_t)|, the
    norm of its deviations inside each sliding window of ``window_size`` epochs, windows weighted
    exponentially towards the last, over the scoring run's first ``trajectory_length`` epochs; higher = kept.
    Definition, defaults and differences from the paper: docs/methods.md#tdds.
    """

    paper = "Zhang et al., Spanning Training Progress: Temporal Dual-Depth Scoring (TDDS) for Enhanced Dataset Pruning, CVPR 2024"
    higher_is_harder = True
    requires = ("logits",)

    def __init__(
        self, dataset, trajectory_length: int, window_size: int, decay: float, logger_object: DCLogger
    ):
        if int(window_size) < 2:
            raise InputError(
                f"TDDS importance.window_size must be >= 2 (a window needs one epoch pair); got {window_size}"
            )
        if int(window_size) > int(trajectory_length):
            raise InputError(
                f"importance.window_size ({window_size}) must not exceed importance.trajectory_length ({trajectory_length})"
            )
        if not 0.0 < float(decay) <= 1.0:
            raise InputError(f"TDDS importance.decay must be in (0, 1]; got {decay}")
        super().__init__(dataset=dataset, window_size=window_size, logger_object=logger_object, flush=False)
        self.trajectory_length = int(trajectory_length)
        self.decay = float(decay)

    def compute_importance(self) -> ImportanceScores:
        epochs = self.trajectory_epochs(self.trajectory_length)
        logits, seen = self.read_epochs(epochs)
        # the (T, N, C) part in float32 like the logged logits, a softmax in place on the freshly read
        # array (no copies); the window statistics in float64
        probabilities = torch.nan_to_num_(logits)
        probabilities.sub_(probabilities.amax(-1, keepdim=True)).exp_()
        probabilities /= probabilities.sum(-1, keepdim=True)
        terms = kl_terms(probabilities).double()  # (T-1, N)
        valid = (seen[1:] & seen[:-1]).double()
        pairs_per_window = max(1, (self.window_size - 1) // self.offset)
        window_valid = valid.unfold(0, pairs_per_window, 1)  # (K, N, W-1), a view
        mean = (terms * valid).unfold(0, pairs_per_window, 1).sum(-1) / window_valid.sum(-1).clamp_min(1)
        centered = terms.unfold(0, pairs_per_window, 1) - mean[..., None]  # the one (K, N, W-1) temporary
        deviation_norm = centered.mul_(window_valid).square_().sum(-1).sqrt_()  # (K, N)
        count = deviation_norm.shape[0]
        weights = self.decay * (1.0 - self.decay) ** torch.arange(count - 1, -1, -1, dtype=torch.float64)
        return self.scores((weights[:, None] * deviation_norm).sum(0))


@register_sampler("tdds")
class TDDSDataLoader(RankingSampler):
    """Static: keep the highest-scoring (most informative) fraction, as TDDS selects.

    As the official ``data_subset.py``: no class balancing, no stratification, ties broken at random; scores that
    declare the opposite direction keep their lowest (``descending`` overrides). Definition, defaults and
    differences from the paper: docs/methods.md#tdds.
    """

    paper = TDDSImportance.paper
    static = True

    def __init__(self, dataset, pruning_rate: float, descending: bool | None = None, **kwargs):
        super().__init__(dataset, pruning_rate, static=True, descending=descending, **kwargs)

    def compute_subset(self, sample_importance) -> torch.Tensor:
        return self.keep_hardest(sample_importance, default_higher_is_harder=True)
