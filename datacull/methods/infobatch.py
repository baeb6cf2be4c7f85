"""InfoBatch: unbiased dynamic pruning of well-learned samples, with loss rescaling and annealing."""

from __future__ import annotations

import math

import torch

from ..data import DCDataLoader
from ..errors import InputError
from ..registry import register_sampler
from ..sampling import as_score_tensor, larger_is_harder


@register_sampler("infobatch")
class InfoBatchDataLoader(DCDataLoader):
    """Dynamic: skip a random share of the below-mean-loss samples each epoch, up-weight the rest; anneal at the end.

    InfoBatch (Qin et al., ICLR 2024), as its official ``infobatch.py``. Before each epoch, the
    "well-learned" samples are those whose score lies strictly below the mean of all N stored scores
    (stale scores of samples skipped earlier included); a random ``pruning_rate`` share of them is
    skipped this epoch: floor((1 - p) |well|) of them are kept, with loss weight 1 / (1 - p), which keeps
    the expected gradient unbiased; every other sample is kept with weight 1. The sampler returns
    ``(indices, weights)`` and the training loop multiplies each sample's loss by its weight. Epoch e
    (0-based) prunes while e + 1 <= delta * num_epochs; the rest, the last (1 - delta) of training, trains
    on all data with all weights reset to 1 (the runner passes ``num_epochs``; set ``resample_every`` 1).

    The kept count is not round((1 - p) N): it depends on how many scores are below the mean, and
    ``pruning_rate`` is the share of the well-learned samples skipped, as in the paper. The runner records
    the realized size per epoch (``subset_size`` in ``metrics.csv``, ``realized_pruning_rate``).

    Scores: InfoBatch's are each sample's latest training loss, which ``importance=loss`` (``mode: latest``,
    online: refreshed from the run's previous epoch) provides; ``sampler=infobatch`` makes it the default
    importance. It starts all equal (log C), so epoch 0 prunes nothing, as the official initial value of 3
    does. Any other importance works through its declared direction: "well learned" is then the easy side
    of its mean (for AUM, above-mean margins), and a static importance (AUM, EL2N) is scored once by the
    scoring run and gives the same well-learned set every epoch, of which a fresh random share is skipped.

    Differences: the official pip version clamps the kept share of well-learned samples to >= 10% (at most
    90% skipped); we skip what ``pruning_rate`` asks (weights 1 / (1 - p) grow large above 0.9). Its weights
    are reset only when its epoch counter equals delta * num_epochs + 1 exactly, which never happens when
    that is not an integer (the 1 / (1 - p) weights then persist into annealing); we reset them explicitly.
    The mean is taken as min + mean(s - min), so all-equal scores are never "below the mean" by rounding.
    """

    paper = "Qin et al., InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning, ICLR 2024"
    static_selection = False
    uses_importance = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        num_epochs: int,
        delta: float = 0.875,
        descending: bool | None = None,
        **kwargs,
    ):
        if int(num_epochs) < 1:
            raise InputError(f"InfoBatch needs num_epochs >= 1 (the length of training); got {num_epochs}")
        if not 0.0 < float(delta) <= 1.0:
            raise InputError(
                f"InfoBatch sampler.delta (share of epochs that prune) must be in (0, 1]; got {delta}"
            )
        super().__init__(dataset, pruning_rate, static=False, **kwargs)
        self.num_epochs = int(num_epochs)
        self.delta = float(delta)
        self.descending = descending

    def pruning_active(self) -> bool:
        """Whether the coming epoch prunes (the official ``e + 1 <= num_epochs * delta``)."""
        return self.current_epoch + 1 <= self.num_epochs * self.delta + 1e-9

    def compute_subset(self, sample_importance) -> tuple[torch.Tensor, torch.Tensor]:
        everything = torch.arange(self.total_num_samples)
        if not self.pruning_active():
            return everything, torch.ones(self.total_num_samples)
        scores = as_score_tensor(sample_importance)
        hardness = scores if larger_is_harder(self.descending, sample_importance, True) else -scores
        lowest = hardness.min()
        well_learned = hardness < lowest + (hardness - lowest).mean()
        candidates = torch.nonzero(well_learned).squeeze(1)
        num_kept = math.floor((1.0 - self.pruning_rate) * candidates.numel() + 1e-9)
        kept_candidates = candidates[torch.randperm(candidates.numel(), generator=self.rng)[:num_kept]]
        keep = ~well_learned
        keep[kept_candidates] = True
        indices = everything[keep]
        weights = torch.where(well_learned[indices], 1.0 / (1.0 - self.pruning_rate), 1.0)
        return indices, weights
