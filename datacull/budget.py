"""How long a run trains: ``trainer.budget``, one key for the three ways pruning papers compare.

- ``epochs`` (default): ``trainer.epochs`` passes over the subset; compute shrinks with the subset. An explicit
  ``trainer.steps`` makes it an absolute number of optimizer steps instead.
- ``equal_steps``: the subset trains as many optimizer steps as a full-data run of ``trainer.epochs`` takes (the
  CCS / data-diet protocol): it saves data, not compute.
- ``compute``: the whole run, its scoring run included, gets ``trainer.compute`` (a fraction in (0, 1]) of one
  full-data run's samples; the step count follows from it and the learning-rate schedule spans exactly those steps.
  ``sampler=full trainer.budget=compute trainer.compute=0.3`` is full data trained for 30% of its samples: the
  frontier every method is read against.

Every budget is measured against the same full-data run (``trainer.epochs`` passes over all samples), so
``compute_saved`` compares runs of every budget on one scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError
from .settings import TrainerSettings

BUDGETS = ("epochs", "equal_steps", "compute")


def steps_per_pass(num_samples: int, batch_size: int) -> int:
    """Optimizer steps of one pass over ``num_samples`` (the engine splits a pass into this many near-equal
    batches)."""
    return max(1, -(-int(num_samples) // int(batch_size)))


def samples_in_steps(num_samples: int, batch_size: int, steps: int) -> int:
    """Samples trained by ``steps`` steps over passes of ``num_samples``: whole passes, then the first batches of one
    more, as the engine splits them (``torch.tensor_split``: the first ``num_samples % per_pass`` batches hold one
    sample more)."""
    per_pass = steps_per_pass(num_samples, batch_size)
    passes, extra = divmod(int(steps), per_pass)
    return passes * num_samples + extra * (num_samples // per_pass) + min(extra, num_samples % per_pass)


@dataclass(frozen=True)
class Budget:
    """A resolved budget: ``epochs`` passes, or ``steps`` optimizer steps when set.

    ``kind`` is ``trainer.budget``; ``compute`` is ``trainer.compute`` under ``budget=compute``. ``epochs`` is always
    ``trainer.epochs``: under a step budget it is the length of the full-data run the budget is measured against.
    """

    epochs: int
    steps: int | None = None
    kind: str = "epochs"
    compute: float | None = None

    def full_data_samples(self, num_samples: int, batch_size: int) -> int:
        """Samples of the full-data run that ``compute_saved`` is measured against: ``epochs`` passes over all
        samples, or, for an explicit ``trainer.steps``, what full data trains in those steps."""
        if self.steps is None or self.kind != "epochs":
            return self.epochs * num_samples
        return samples_in_steps(num_samples, batch_size, self.steps)

    def done(self, epochs: int, steps: int) -> bool:
        """Whether a run that has trained ``epochs`` passes and ``steps`` optimizer steps has spent the budget."""
        return steps >= self.steps if self.steps is not None else epochs >= self.epochs

    def describe(self) -> str:
        if self.kind == "compute":
            return f"{self.compute:g} of a full-data run's samples, scoring included: {self.steps} steps"
        if self.kind == "equal_steps":
            return f"{self.steps} steps, as many as full data takes in {self.epochs} epochs"
        return f"{self.steps} steps" if self.steps is not None else f"{self.epochs} epochs"


def plan_budget(trainer, sampler_name: str, schedules_itself: bool) -> Budget:
    """``trainer.budget`` and its keys checked; a step count that depends on the subset and the scoring run is left
    for :func:`resolve_budget`. ``schedules_itself``: the sampler plans over ``trainer.epochs`` (InfoBatch)."""
    trainer = TrainerSettings.of(trainer)
    epochs = int(trainer.epochs)
    if epochs < 1:
        raise InputError(f"trainer.epochs must be >= 1; got {epochs}")
    kind = str(trainer.budget)
    if kind not in BUDGETS:
        raise InputError(f"trainer.budget must be one of {', '.join(BUDGETS)}; got {kind!r}")
    steps, compute = trainer.steps, trainer.compute
    if compute is not None and kind != "compute":
        raise InputError(
            f"trainer.compute={compute} is read only with trainer.budget=compute (it is {kind}); set both or neither"
        )
    if steps is not None and kind != "epochs":
        raise InputError(
            f"trainer.steps={steps} and trainer.budget={kind} both set the length of training; give one of them"
        )
    if steps is not None and int(steps) < 1:
        raise InputError(f"trainer.steps must be >= 1 (or null for an epoch budget); got {steps}")
    if kind == "compute":
        if compute is None or not 0.0 < float(compute) <= 1.0:
            raise InputError(
                f"trainer.budget=compute needs trainer.compute in (0, 1] (a fraction of one full-data run's "
                f"samples); got {compute}"
            )
        compute = float(compute)
    if schedules_itself and (steps is not None or kind != "epochs"):
        what = f"trainer.budget={kind}" if kind != "epochs" else "trainer.steps"
        raise InputError(
            f"sampler={sampler_name} schedules itself over trainer.epochs; it cannot run with a step budget "
            f"(drop {what})"
        )
    return Budget(epochs, None if steps is None else int(steps), kind, compute)


def resolve_budget(
    budget: Budget, num_samples: int, subset_size: int, batch_size: int, scoring_cost_samples: int
) -> Budget:
    """The step count of an ``equal_steps`` or ``compute`` budget, from the full data's size, the subset's size
    (constant for every sampler that accepts a step budget) and what the scoring run costs, in samples of the model
    trained."""
    if budget.kind == "equal_steps":
        steps = budget.epochs * steps_per_pass(num_samples, batch_size)
        return Budget(budget.epochs, steps, budget.kind)
    if budget.kind != "compute":
        return budget
    full = budget.epochs * num_samples
    allowed = budget.compute * full
    training = allowed - scoring_cost_samples
    if training < 1:
        raise InputError(
            f"trainer.compute={budget.compute:g} allows {allowed:,.0f} samples, but the scoring run alone costs "
            f"{scoring_cost_samples:,} ({scoring_cost_samples / full:.3f} of a full-data run): raise trainer.compute "
            "or score with fewer epochs or a proxy (scoring.model)"
        )
    mean_batch = subset_size / steps_per_pass(subset_size, batch_size)
    steps = max(1, math.floor(training / mean_batch + 0.5))
    return Budget(budget.epochs, steps, budget.kind, budget.compute)
