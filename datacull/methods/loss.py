"""Per-sample training loss: the latest (online) or the mean over a trajectory (static)."""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..importance import DCImportance, ImportanceScores
from ..logger import DCLogger
from ..registry import register_importance

MODES = ("latest", "mean")


@register_importance("loss")
class LossImportance(DCImportance):
    """Per-sample cross-entropy: the latest value (online) or the mean over the first epochs (static); high = hard.

    ``mode="latest"`` is each sample's most recent training loss, refreshed from the run's own epochs (InfoBatch's
    score); ``mode="mean"`` is a datacull baseline, the mean training loss over the scoring run's first
    ``trajectory_length`` epochs (not CCS's ``loss``, which is one pass of its final checkpoint). Definition,
    defaults and references: docs/methods.md#loss.
    """

    paper = "Qin et al., InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning, ICLR 2024 (latest loss)"
    higher_is_harder = True
    requires = ("loss",)
    reducible = True  # its metric is one number per sample already: a reduced store logs only the loss
    state_attributes = ("latest_losses", "last_epoch_read")

    def __init__(
        self,
        dataset,
        logger_object: DCLogger,
        mode: str = "latest",
        trajectory_length: int | None = None,
        flush: bool | None = None,
    ):
        if mode not in MODES:
            raise InputError(f"importance.mode must be one of {', '.join(MODES)}; got {mode!r}")
        super().__init__(
            dataset=dataset,
            window_size=1,
            logger_object=logger_object,
            flush=mode == "latest" if flush is None else flush,
        )
        self.mode = mode
        self.online = self.is_online(mode=mode)
        self.trajectory_length = None if trajectory_length is None else int(trajectory_length)
        num_classes = int(self.labels_tensor.max()) + 1 if self.num_samples else 1
        self.latest_losses = torch.full((self.num_samples,), math.log(num_classes), dtype=torch.float64)

    @classmethod
    def is_online(cls, **params) -> bool:
        return params.get("mode", "latest") == "latest"

    def compute_importance(self) -> ImportanceScores:
        if self.mode == "mean":
            return self.scores(self.trajectory_mean(self.trajectory_length, lambda losses: losses))
        self.latest_losses, _ = self.update_latest(self.latest_losses)
        return self.scores(self.latest_losses.clone())
