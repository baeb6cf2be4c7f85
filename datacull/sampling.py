"""Vectorized building blocks shared by the samplers: kept counts, quota apportioning, per-class draws.

Everything here works on whole index tensors; the only Python loops run over classes or strata, never
over samples.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import torch

from .errors import InputError


def check_pruning_rate(pruning_rate: float) -> float:
    """Return ``pruning_rate`` as a float, or raise a one-line error if it is not in [0, 1)."""
    try:
        rate = float(pruning_rate)
    except (TypeError, ValueError):
        raise InputError(
            f"pruning_rate must be a number in [0, 1) (the fraction removed); got {pruning_rate!r}"
        ) from None
    if not (0.0 <= rate < 1.0) or math.isnan(rate):
        raise InputError(
            f"pruning_rate must be in [0, 1): it is the fraction of samples REMOVED (0.3 keeps 70%); got {pruning_rate!r}"
        )
    return rate


def kept_count(num_samples: int, pruning_rate: float) -> int:
    """Samples kept at ``pruning_rate``: round((1 - p) * N), half up, and at least one of a non-empty set.

    The small epsilon keeps binary floating point from flipping an exact half (1 - 0.7 = 0.30000000000000004).
    """
    rate = check_pruning_rate(pruning_rate)
    if num_samples <= 0:
        return 0
    kept = int(math.floor((1.0 - rate) * num_samples + 0.5 + 1e-9))
    return min(num_samples, max(1, kept))


def kept_fraction(pruning_rate: float) -> float:
    """The kept fraction 1 - p as the decimal a user types (1 - 0.7 -> 0.3, where binary floating point gives
    0.30000000000000004): what an official code that takes the kept fraction (``--fraction 0.3``) receives, for the
    samplers' ``official_rounding``."""
    return float(Decimal(1) - Decimal(repr(float(pruning_rate))))


def as_index_tensor(indices) -> torch.Tensor:
    """Any 1-D integer sequence (list, ndarray, tensor) as a CPU int64 tensor."""
    if isinstance(indices, torch.Tensor):
        tensor = indices.detach().to("cpu")
    else:
        array = np.asarray(indices)
        if array.size == 0:
            array = array.astype(np.int64)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(f"subset indices must be integers; got dtype {tensor.dtype}")
    return tensor.reshape(-1).to(torch.int64)


def class_counts(labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    return torch.bincount(labels, minlength=num_classes or 0)


def apportion(weights: torch.Tensor, total: int, capacity: torch.Tensor, minimum: int = 0) -> torch.Tensor:
    """Split ``total`` items over groups in proportion to ``weights``, never exceeding ``capacity``.

    ``minimum`` items go to every non-empty group first (as far as ``total`` allows, largest weights first),
    and the rest is split as below.

    Water-filling: a group whose proportional share exceeds its capacity is saturated (capped) and the
    surplus is shared again among the others in proportion to their weights, until no share exceeds its
    capacity. If the free groups all weigh zero while budget remains, the rest is shared in proportion to their
    spare capacity. The real-valued shares are then rounded to integers that sum to ``total`` exactly (floor,
    then one more item to the largest fractional parts that still have room).
    """
    weights = torch.as_tensor(weights, dtype=torch.float64).clone()
    capacity = torch.as_tensor(capacity, dtype=torch.int64)
    if (weights < 0).any() or not torch.isfinite(weights).all():
        raise ValueError("apportion weights must be finite and non-negative")
    total = int(total)
    if total > int(capacity.sum()):
        raise ValueError(f"cannot place {total} items in groups holding {int(capacity.sum())}")
    if minimum > 0:
        floor = torch.minimum(capacity, torch.full_like(capacity, int(minimum)))
        if int(floor.sum()) > total:  # not enough for everyone: the largest weights get theirs
            order = torch.argsort(weights, descending=True, stable=True)
            granted = torch.cumsum(floor[order], 0) <= total
            floor[order[~granted]] = 0
        return floor + apportion(weights, total - int(floor.sum()), capacity - floor)
    share = torch.zeros_like(weights)
    free = capacity > 0
    remaining = float(total)
    while remaining > 1e-9 and free.any():
        free_weights = torch.where(free, weights, torch.zeros_like(weights))
        if free_weights.sum() <= 0:  # only zero-weight groups left: fill them by spare room
            free_weights = torch.where(free, capacity.double() - share, torch.zeros_like(weights))
        proposal = share + remaining * free_weights / free_weights.sum()
        over = free & (proposal >= capacity.double())
        if not over.any():
            share = torch.where(free, proposal, share)
            break
        share = torch.where(over, capacity.double(), share)
        free &= ~over
        remaining = total - float(share.sum())
    counts = torch.minimum(torch.floor(share + 1e-9).to(torch.int64), capacity)
    shortfall = total - int(counts.sum())
    if shortfall > 0:
        fraction = share - counts.double()
        fraction[counts >= capacity] = -1.0
        order = torch.argsort(fraction, descending=True, stable=True)
        counts[order[:shortfall]] += 1
    return counts


def first_per_class(order: torch.Tensor, labels: torch.Tensor, quotas: torch.Tensor) -> torch.Tensor:
    """The first ``quotas[c]`` samples of each class ``c`` in ``order`` (a permutation of all sample indices,
    most wanted first), all classes in one pass."""
    labels = labels.to(torch.int64)
    by_class = order[torch.argsort(labels[order], stable=True)]
    sorted_labels = labels[by_class]
    counts = torch.bincount(labels, minlength=quotas.numel())
    starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(labels.numel()) - starts[sorted_labels]
    return by_class[rank_in_class < quotas[sorted_labels]]


def sample_per_class(
    labels: torch.Tensor,
    quotas: torch.Tensor,
    generator: torch.Generator,
    log_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``quotas[c]`` distinct samples of each class ``c`` without replacement, all classes in one pass.

    Uniform inside each class when ``log_weights`` is None, else proportional to ``exp(log_weights)`` by the
    Gumbel-top-k trick, which has the same distribution as drawing one at a time without replacement with
    those probabilities (what ``numpy.random.choice(replace=False, p=...)`` does).
    """
    n = labels.numel()
    keys = -torch.log(-torch.log(torch.rand(n, generator=generator, dtype=torch.float64).clamp_min(1e-300)))
    if log_weights is not None:
        keys = keys + log_weights.to(torch.float64)
    return first_per_class(torch.argsort(keys, descending=True), labels, quotas)


def proportional_quotas(labels: torch.Tensor, total: int) -> torch.Tensor:
    """Per-class counts proportional to the class sizes that sum to ``total`` exactly (stratified subsets)."""
    sizes = class_counts(labels)
    return apportion(sizes, total, sizes)


def random_subset(
    labels: torch.Tensor, total: int, generator: torch.Generator, class_balanced: bool = False
) -> torch.Tensor:
    """``total`` distinct samples uniformly at random; ``class_balanced``: class-proportional quotas, then uniform
    inside each class."""
    if class_balanced:
        return sample_per_class(labels, proportional_quotas(labels, total), generator)
    return torch.randperm(labels.numel(), generator=generator)[:total]


def top_k(values: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of the ``k`` highest ``values``, highest first; equal values are ordered at random, not by index."""
    shuffled = torch.randperm(values.numel(), generator=generator)
    order = torch.argsort(values[shuffled], descending=True, stable=True)
    return shuffled[order[:k]]


def as_score_tensor(sample_importance) -> torch.Tensor:
    """Scores (array, list, tensor, :class:`~datacull.ImportanceScores`) as a CPU float64 tensor."""
    if isinstance(sample_importance, torch.Tensor):
        return sample_importance.detach().to("cpu", torch.float64).reshape(-1)
    return torch.from_numpy(np.asarray(sample_importance, dtype=np.float64).reshape(-1).copy())


def sampling_weights(sample_importance) -> torch.Tensor:
    """Non-negative weights, larger for harder samples, for samplers that draw in proportion to a score.

    Scores that already are such weights (non-negative, larger = harder, e.g. RCAP's own per-class softmax)
    are used as they are. Scores that point the other way or go negative (AUM, margins) are replaced by
    their hardness rank over the dataset, 1..N: the same order, on a scale a draw can use.
    """
    scores = as_score_tensor(sample_importance)
    if reads_higher_as_harder(sample_importance) and bool((scores >= 0).all()):
        return scores
    ranks = torch.empty_like(scores)
    order = torch.argsort(hardness(sample_importance), stable=True)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=scores.dtype)
    return ranks


def reads_higher_as_harder(
    sample_importance, higher_is_harder: bool | None = None, default: bool = True
) -> bool:
    """Which way to read scores: the sampler's ``higher_is_harder`` if given, else the ``higher_is_harder`` the
    importance declared, else ``default``."""
    if higher_is_harder is not None:
        return bool(higher_is_harder)
    declared = getattr(sample_importance, "higher_is_harder", None)
    return default if declared is None else bool(declared)


def hardness(sample_importance, higher_is_harder: bool | None = None, default: bool = True) -> torch.Tensor:
    """The scores as a CPU float64 tensor in which larger means harder (negated when they point the other way)."""
    scores = as_score_tensor(sample_importance)
    return scores if reads_higher_as_harder(sample_importance, higher_is_harder, default) else -scores
