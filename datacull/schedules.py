"""Registered learning-rate schedules: ``scheduler=<name>`` gives ``factor(progress)``, the multiplier of the base
learning rate at a training progress in [0, 1].

Progress is the fraction of training done (``(epoch + step / steps_this_epoch) / epochs``, or steps done over a
step budget), so a schedule stays where it should when the subset, and with it the number of steps per epoch,
changes between epochs (dynamic pruning, InfoBatch), which a step-counting torch scheduler would get wrong.
Lengths given in epochs (warm-up, milestones) are fractions of the run's ``epochs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .errors import InputError
from .registry import register_scheduler

Schedule = Callable[[float], float]


def _with_warmup(body: Schedule, warmup_epochs: float, epochs: int) -> Schedule:
    warmup = float(warmup_epochs or 0) / max(epochs, 1)
    if warmup <= 0:
        return body
    return lambda progress: min(1.0, (progress + 1e-12) / warmup) * body(progress)


def _after_warmup(progress: float, warmup_epochs: float, epochs: int) -> float:
    """Progress through the part of training after the warm-up, in [0, 1]."""
    warmup = float(warmup_epochs or 0) / max(epochs, 1)
    return min(max((progress - warmup) / max(1.0 - warmup, 1e-12), 0.0), 1.0)


@register_scheduler("constant")
def constant(epochs: int, warmup_epochs: float = 0) -> Schedule:
    """The base learning rate throughout (after an optional linear warm-up)."""
    return _with_warmup(lambda progress: 1.0, warmup_epochs, epochs)


@register_scheduler("cosine")
def cosine(epochs: int, warmup_epochs: float = 0, min_lr_factor: float = 0.0) -> Schedule:
    """Cosine decay from the base rate to ``min_lr_factor`` of it over the run (the papers' CIFAR recipe)."""
    floor = float(min_lr_factor)

    def factor(progress: float) -> float:
        inner = _after_warmup(progress, warmup_epochs, epochs)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * inner))

    return _with_warmup(factor, warmup_epochs, epochs)


@register_scheduler("rs2_cosine")
def rs2_cosine(epochs: int, min_lr_factor: float = 0.001) -> Schedule:
    """RS2's official per-step learning rate, for reproducing its numbers: torch's ``CosineAnnealingLR`` over the run
    started one epoch late (its ``scheduler.last_epoch = (start_epoch - 1) * len(train_loader)`` with start_epoch 0),
    floored at ``min_lr_factor`` (the official ``--min_lr 1e-4`` at ``--lr 0.1``). It rises to 2 / (1 + cos(pi/E))
    times the base rate after the first epoch and ends one epoch short of its floor. docs/methods.md#rs2."""
    if int(epochs) < 2:
        raise InputError(
            f"scheduler=rs2_cosine needs trainer.epochs >= 2 (it starts one epoch late); got {epochs}"
        )
    floor, late = float(min_lr_factor), 1.0 / int(epochs)
    start = 1.0 + math.cos(
        math.pi * late
    )  # the official schedule starts at the base rate, one epoch before its peak
    return lambda progress: floor + (1.0 - floor) * (1.0 + math.cos(math.pi * (progress - late))) / start


@register_scheduler("step")
def step(epochs: int, milestones: Sequence[float], gamma: float, warmup_epochs: float = 0) -> Schedule:
    """Multiply the rate by ``gamma`` at each milestone epoch (EL2N's and forgetting's 60/120/160 of 200)."""
    fractions = sorted(float(milestone) / max(epochs, 1) for milestone in milestones)
    return _with_warmup(
        lambda progress: float(gamma) ** sum(progress >= m - 1e-12 for m in fractions), warmup_epochs, epochs
    )


@register_scheduler("linear")
def linear(epochs: int, warmup_epochs: float = 1) -> Schedule:
    """Linear warm-up, then linear decay to zero (one-cycle, as in airbench)."""
    warmup = float(warmup_epochs or 0) / max(epochs, 1)

    def factor(progress: float) -> float:
        return max(0.0, 1.0 - (progress - warmup) / max(1.0 - warmup, 1e-12)) if progress >= warmup else 1.0

    return _with_warmup(factor, warmup_epochs, epochs)
