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

    ``mode="latest"`` is the score of loss-based dynamic pruning, e.g. InfoBatch (Qin et al., ICLR 2024):
    each sample's most recent training loss (train mode, augmented, before the update), updated from the
    run's own previous epoch; a sample not trained since keeps its last value, and every sample starts at
    log C, the loss of a uniform prediction (all equal, so a rule such as InfoBatch's "below the mean"
    selects nothing before the first epoch; the official InfoBatch starts all scores at 3, which acts the
    same). ``mode="mean"`` is the static loss score (e.g. in CCS's ``generate_importance_score.py``): the mean
    loss over the first ``trajectory_length`` epochs of the scoring run, over the epochs that trained
    each sample (never trained = neutral). Under a static sampler, ``latest`` scores the last epoch of
    the scoring run. Epochs ``latest`` has read are deleted unless ``flush=False`` (it never re-reads them).
    """

    paper = "Qin et al., InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning, ICLR 2024 (latest loss)"
    higher_is_harder = True
    requires = ("loss",)
    state_attributes = ("latest_losses", "last_epoch_read")

    def __init__(
        self,
        dataset,
        logger_object: DCLogger,
        mode: str = "latest",
        trajectory_length: int = 10,
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
        self.trajectory_length = int(trajectory_length)
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
