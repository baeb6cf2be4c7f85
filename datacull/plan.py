"""ScorePlan: which scores a loader gets, decided in one place for the runner, the Lightning callback and
``datacull score`` / ``select``.

Three modes, from the sampler and the importance alone: ``none`` (the sampler ignores scores: full, random, RS2,
MetriQ), ``online`` (the importance is refreshed from the run's own recent epochs before each resample: RCAP,
``loss`` with ``mode=latest``), ``static`` (computed once, before the first epoch: from a scoring run's trajectory
when the importance reads one). A static sampler makes any importance static: it chooses once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .data import DCDataLoader

NONE, ONLINE, STATIC = "none", "online", "static"


@dataclass(frozen=True)
class ScorePlan:
    mode: str
    #: the per-sample metrics the importance reads (its ``requires``): logged by the run when online, read from
    #: a scoring run when static
    metrics: tuple[str, ...] = ()

    @property
    def reads_scoring_run(self) -> bool:
        """A static importance that reads a trajectory: a scoring run (cached) comes first."""
        return self.mode == STATIC and bool(self.metrics)


def plan_scores(loader: DCDataLoader, online: bool, metrics: Sequence[str] = ()) -> ScorePlan:
    """The plan for ``loader`` fed by an importance that is ``online`` (its ``is_online(**params)``, or an
    instance's ``online``) and reads ``metrics``."""
    if not loader.reads_scores:
        return ScorePlan(NONE)
    return ScorePlan(ONLINE if online and not loader.static else STATIC, tuple(metrics))
