"""ScoreSource: which scores a loader gets and when it resamples, for the runner and the Lightning callback alike.

It owns the importance (built once), obtains the cached scoring run a static importance or MetriQ's class
accuracies need, refreshes an online importance after the epochs that precede a resample, and holds all of this
in its checkpoint state. The rule: a loader chooses before its first epoch; a dynamic one again every
``resample_every`` epochs; a static one keeps its subset (and reshuffles it every pass).
"""

from __future__ import annotations

import logging
from typing import Any

from .data import DCDataLoader
from .distributed import SINGLE, DistContext, broadcast_object
from .errors import InputError
from .importance import DCImportance, ImportanceScores
from .logger import DCLogger
from .plan import NONE, ONLINE, plan_scores
from .scoring_run import ScoringRequest, obtain_scoring_run
from .summary import ScoringCost

log = logging.getLogger("datacull")


class ScoreSource:
    """Feeds ``loader``: ``importance`` is a :class:`DCImportance` (online ones are refreshed, static ones computed
    once), precomputed scores, or None for samplers that ignore scores. ``scoring`` is the cached scoring run to
    obtain first (static importances, MetriQ's query run); under DDP rank 0 computes and broadcasts the scores."""

    def __init__(
        self,
        loader: DCDataLoader,
        importance: DCImportance | Any = None,
        *,
        resample_every: int = 1,
        scoring: ScoringRequest | None = None,
        context: DistContext = SINGLE,
    ):
        if int(resample_every) < 1:
            raise InputError(f"resample_every must be >= 1; got {resample_every}")
        if loader.requires_scores and importance is None:
            raise InputError(
                f"{type(loader).__name__} ranks samples by importance: give it an importance (a DCImportance or scores)"
            )
        self.loader = loader
        self.importance = importance if isinstance(importance, DCImportance) else None
        self.scores: ImportanceScores | Any = None if self.importance is not None else importance
        self.plan = plan_scores(
            loader,
            self.importance is not None and self.importance.online,
            () if self.importance is None else self.importance.requires,
        )
        self.resample_every = int(resample_every)
        self.scoring = scoring
        self.context = context
        self.scoring_cost = ScoringCost()
        self.prepared_epoch: int | None = None
        self.scores_for: int | None = None  # the epoch an online importance's scores are up to date for

    @property
    def online(self) -> bool:
        """Whether the importance is refreshed from the run's own epochs before each resample."""
        return self.plan.mode == ONLINE

    @property
    def loggers(self) -> dict[str, DCLogger]:
        """The loggers training writes into: an online importance's own (a static one's are never written)."""
        if not self.online:
            return {}
        importance = self.importance
        extra = {metric: getattr(importance, f"{metric}_logger") for metric in importance.requires[1:]}
        return {importance.requires[0]: importance.logger, **extra}

    def continue_run(self, epoch: int) -> None:
        """After a resume: the online loggers keep this run's epochs up to the checkpointed ``epoch``."""
        for logger in self.loggers.values():
            logger.continue_run(epoch)

    def start(self) -> None:
        """Before the first epoch: obtain the scoring run if one is needed, and the first scores."""
        if self.scoring is not None:
            run = obtain_scoring_run(self.scoring, self._reducer())
            self.scoring_cost = run.cost()
            if self.loader.needs_class_accuracy and self.loader.class_wise_acc is None:
                accuracy = run.best_validation_class_accuracy()
                if accuracy is None:
                    raise InputError(
                        f"{type(self.loader).__name__} needs per-class validation accuracy: set "
                        "dataset.val_fraction to auto or > 0, or give sampler.class_wise_acc"
                    )
                self.loader.set_class_wise_acc(accuracy)
        if self.importance is not None and self.plan.mode != NONE:
            self.refresh(0)

    def _reducer(self):
        """What a reduced scoring store keeps of each epoch's logits: the importance's own reduction."""
        if (
            self.scoring.reducer_key is None
            or self.importance is None
            or "logits" not in self.importance.requires
        ):
            return None
        return self.importance.epoch_reducer

    def refresh(self, epoch: int) -> None:
        """Recompute the importance for ``epoch`` on rank 0 (it reads rank 0's files) and broadcast the scores."""
        compute = self.importance.compute_importance
        self.scores = broadcast_object(self.context, compute() if self.context.is_main else None)
        self.scores_for = epoch

    def due(self, epoch: int) -> bool:
        loader = self.loader
        return loader.subset_indices is None or (not loader.static and epoch % self.resample_every == 0)

    def prepare(self, epoch: int) -> None:
        """Choose the subset for ``epoch`` if it is due (once per epoch, however often it is called)."""
        if self.prepared_epoch == epoch:
            return
        self.prepared_epoch = epoch
        if not self.due(epoch):
            return
        if self.online and self.scores_for != epoch:  # e.g. resumed after the last epoch of an earlier fit
            self.refresh(epoch)
        self.loader.set_epoch(epoch)
        # under DDP resample() checks that every rank chose the same subset
        self.loader.resample(self.scores if self.plan.mode != NONE else None)

    def epoch_end(self, epoch: int, last: bool) -> None:
        """After ``epoch``: write what the loggers buffered and, when the next epoch resamples, refresh an online
        importance (before the checkpoint, so a resumed run has consumed the same epochs)."""
        for logger in self.loggers.values():
            logger.flush()
        if self.online and not last and (epoch + 1) % self.resample_every == 0:
            self.refresh(epoch + 1)

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "importance": self.importance.state_dict() if self.online else None,
            "class_wise_acc": getattr(self.loader, "class_wise_acc", None),
            "scoring": self.scoring_cost.fields(),
            "prepared_epoch": self.prepared_epoch,
            "scores_for": self.scores_for,
            "loader": self.loader.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scores = state["scores"]
        if state["importance"] is not None:
            self.importance.load_state_dict(state["importance"])
        if state["class_wise_acc"] is not None:
            self.loader.set_class_wise_acc(state["class_wise_acc"])
        self.scoring_cost = ScoringCost.from_fields(state["scoring"])
        self.prepared_epoch = state["prepared_epoch"]
        self.scores_for = state["scores_for"]
        self.loader.load_state_dict(state["loader"])
