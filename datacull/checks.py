"""One rule for the runner's settings: a value that cannot mean what it says is a one-line error; a legal but
degenerate setting is a warning, in the log and in ``summary.json`` (``warnings``).

Checked here, before anything trains: whole numbers that must be whole (epochs, batch sizes, seeds, subset
sizes), counts that must be positive, a learning rate that must be positive, and the data set's classes (every
class of the test set has training samples; more than one class). Degenerate but legal: a pruning rate that leaves
fewer samples than classes.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from .errors import DataError, InputError

log = logging.getLogger("datacull")

#: key -> (smallest value, None allowed, what it means): whole numbers of the trainer, data set and sampler.
WHOLE_NUMBERS = {
    "seed": (0, False, "the run's seed"),
    "trainer.epochs": (1, False, "passes over the subset"),
    "trainer.batch_size": (1, False, "samples per optimizer step"),
    "trainer.eval_batch_size": (1, False, "samples per evaluation batch"),
    "trainer.eval_every": (1, False, "evaluate every N epochs, and always after the last"),
    "sampler.resample_every": (1, True, "resample a dynamic sampler every N epochs"),
    "dataset.subset_per_class": (1, True, "training samples of each class; null for all of them"),
    "dataset.test_subset_per_class": (1, True, "test samples of each class; null for all of them"),
    "scoring.epochs": (1, False, "the scoring run's schedule length"),
    "trainer.steps": (1, True, "an absolute budget in optimizer steps"),
}


def _get(cfg: Any, dotted: str) -> tuple[bool, Any]:
    node = cfg
    for part in dotted.split("."):
        if node is None or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_settings(cfg: Any) -> None:
    """One-line errors for the values of ``WHOLE_NUMBERS`` and the learning rate that cannot mean what they say."""
    for key, (smallest, nullable, meaning) in WHOLE_NUMBERS.items():
        present, value = _get(cfg, key)
        if not present or (value is None and nullable):
            continue
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole or value < smallest:
            nothing = " (or null)" if nullable else ""
            raise InputError(f"{key} must be a whole number >= {smallest}{nothing}: {meaning}; got {value!r}")
    present, lr = _get(cfg, "optimizer.lr")
    if present and (
        isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0
    ):
        raise InputError(f"optimizer.lr must be a number > 0; got {lr!r}")
    present, compute = _get(cfg, "trainer.compute")
    if (
        present
        and compute is not None
        and (isinstance(compute, bool) or not isinstance(compute, int | float))
    ):
        raise InputError(
            f"trainer.compute must be a number in (0, 1] (a share of one full-data run); got {compute!r}"
        )
    present, rate = _get(cfg, "sampler.pruning_rate")
    if present and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise InputError(
            f"sampler.pruning_rate must be one number in [0, 1) (the fraction removed); got {rate!r}"
            + (": to run several, add -m and separate them by commas" if not isinstance(rate, str) else "")
        )


def check_classes(train_y: torch.Tensor, test_y: torch.Tensor, classes: list[str]) -> None:
    """Every class that is tested is trained, and there are at least two: otherwise accuracy means nothing."""
    if len(classes) < 2:
        raise DataError(
            f"the data set has {len(classes)} class(es) ({', '.join(classes) or 'none'}): classification needs at "
            "least two"
        )
    trained = torch.bincount(train_y, minlength=len(classes))
    tested = torch.bincount(test_y, minlength=len(classes))
    untrained = [index for index in range(len(classes)) if trained[index] == 0 and tested[index] > 0]
    if untrained:
        names = ", ".join(f"{classes[index]} ({int(tested[index])} test samples)" for index in untrained[:5])
        raise DataError(
            f"class(es) {names} have no training samples: every class that is tested must be trained"
        )


def degenerate_subset(kept: int, num_classes: int, sampler: str, rate: float) -> str | None:
    """The warning for a subset too small to hold every class, or None."""
    if kept >= num_classes:
        return None
    return (
        f"sampler={sampler} pruning_rate={rate:g} keeps {kept} sample(s) for {num_classes} classes: some classes "
        "are never trained"
    )


def warn(warnings: list[str], message: str | None) -> None:
    if message:
        log.warning(message)
        warnings.append(message)
