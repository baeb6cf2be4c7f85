"""Learning-rate schedules as functions of training progress (fraction of epochs done).

Progress is ``(epoch + step / steps_this_epoch) / epochs``, so a schedule stays where it should when the
subset, and with it the number of steps per epoch, changes between epochs (dynamic pruning, InfoBatch),
which a step-counting torch scheduler would get wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import InputError


def build_schedule(cfg: Any, epochs: int) -> Callable[[float], float]:
    """Return ``factor(progress)``: the multiplier of the base learning rate at a progress in [0, 1]."""
    name = cfg.name
    warmup = float(cfg.get("warmup_epochs", 0) or 0) / max(epochs, 1)

    def with_warmup(body: Callable[[float], float]) -> Callable[[float], float]:
        if warmup <= 0:
            return body
        return lambda progress: min(1.0, (progress + 1e-12) / warmup) * body(progress)

    if name == "constant":
        return with_warmup(lambda progress: 1.0)
    if name == "cosine":
        floor = float(cfg.get("min_lr_factor", 0.0))

        def cosine(progress: float) -> float:
            inner = min(max((progress - warmup) / max(1.0 - warmup, 1e-12), 0.0), 1.0)
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * inner))

        return with_warmup(cosine)
    if name == "step":
        milestones = sorted(float(m) / max(epochs, 1) for m in cfg.milestones)
        gamma = float(cfg.gamma)
        return with_warmup(lambda progress: gamma ** sum(progress >= m - 1e-12 for m in milestones))
    if name == "linear":  # warm up, then decay linearly to zero (one-cycle, as in airbench)

        def linear(progress: float) -> float:
            return (
                max(0.0, 1.0 - (progress - warmup) / max(1.0 - warmup, 1e-12)) if progress >= warmup else 1.0
            )

        return with_warmup(linear)
    raise InputError(f"unknown scheduler '{name}'; known: constant, cosine, step, linear")
