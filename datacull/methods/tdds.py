"""Temporal Dual-Depth Scoring (TDDS)."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..importance import DCImportance, ImportanceScores
from ..logger import DCLogger
from ..registry import register_importance, register_sampler
from ..sampler_bases import RankingSampler


def kl_terms(probabilities: torch.Tensor) -> torch.Tensor:
    """Per consecutive epoch pair, sum_c |p_{t+1} (log(p_{t+1} + 1e-8) - log(p_t + 1e-8))|: shape (T - 1, N).

    The absolute value is taken per class, before the sum, and the 1e-8 is inside the log, both as in the
    official ``importance_evaluation.py``. Computed in the dtype of ``probabilities``, in place where possible.
    """
    log_p = probabilities.add(1e-8).log_()
    return pair_term(log_p[:-1].clone(), log_p[1:], probabilities[1:])


@register_importance("tdds")
class TDDSImportance(DCImportance):
    """Temporal dual-depth score: variability of per-epoch KL-like prediction changes, late windows weighted most.

    TDDS (Zhang et al., CVPR 2024), as the official code: per epoch pair sum_c |p_{t+1} log(p_{t+1}/p_t)|, the
    norm of its deviations inside each sliding window of ``window_size`` epochs, windows weighted
    exponentially towards the last, over the scoring run's first ``trajectory_length`` epochs; higher = kept.
    Definition, defaults and differences from the paper: docs/methods.md#tdds.
    """

    paper = "Zhang et al., Spanning Training Progress: Temporal Dual-Depth Scoring (TDDS) for Enhanced Dataset Pruning, CVPR 2024"
    higher_is_harder = True
    requires = ("logits",)
    reducible = True

    def __init__(
        self,
        dataset,
        trajectory_length: int,
        window_size: int,
        decay: float,
        logger_object: DCLogger,
        reduced: bool = False,
    ):
        if int(window_size) < 2:
            raise InputError(
                f"TDDS importance.window_size must be >= 2 (a window needs one epoch pair); got {window_size}"
            )
        if int(window_size) > int(trajectory_length):
            raise InputError(
                f"importance.window_size ({window_size}) must not exceed importance.trajectory_length ({trajectory_length})"
            )
        if not 0.0 < float(decay) <= 1.0:
            raise InputError(f"TDDS importance.decay must be in (0, 1]; got {decay}")
        super().__init__(dataset=dataset, window_size=window_size, logger_object=logger_object, flush=False)
        self.trajectory_length = int(trajectory_length)
        self.decay = float(decay)
        self.reduced = bool(reduced)

    def epoch_reducer(self) -> TermReducer:
        """A reduced store keeps each epoch's KL-like term against the previous epoch: one number per sample."""
        return TermReducer(self.num_samples)

    def compute_importance(self) -> ImportanceScores:
        epochs = self.trajectory_epochs(self.trajectory_length)
        if (
            self.reduced
        ):  # epoch t holds the term of pair (t - 1, t), seen where both epochs trained the sample
            values, seen = self.read_epochs(epochs[1:])
            terms, valid = values.double().nan_to_num_(), seen
        else:
            terms, valid = self.epoch_pair_terms(epochs)
        pairs_per_window = max(1, (self.window_size - 1) // self.offset)
        return self.scores(window_scores(terms, valid, pairs_per_window, self.decay))

    def epoch_pair_terms(self, epochs: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The KL-like term of each consecutive pair of ``epochs`` (float64, ``(T - 1, N)``) and whether both
        epochs trained the sample, streaming: one epoch's probabilities and the previous one's log-probabilities
        are in memory at a time (float32, as logged), whatever the trajectory's length."""
        terms, valid = [], []
        reducer = TermReducer(self.num_samples)
        buffer = None
        for epoch in epochs:
            values, seen = self.read_epochs([epoch], out=buffer)
            buffer = values.numpy()
            term, pair_seen = reducer.step(torch.nan_to_num_(values[0]), seen[0])
            if term is not None:
                terms.append(term.double())
                valid.append(pair_seen)
        return torch.stack(terms), torch.stack(valid)


def softmax_and_log(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The softmax of ``logits`` (computed in their buffer) and log(p + 1e-8), as the official code takes it."""
    probabilities = logits.sub_(logits.amax(-1, keepdim=True)).exp_()
    probabilities /= probabilities.sum(-1, keepdim=True)
    return probabilities, probabilities.add(1e-8).log_()


def pair_term(previous_log: torch.Tensor, log_p: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """``sum_c |p_t (log p_t - log p_{t-1})|`` per sample (computed in ``previous_log``'s buffer)."""
    return previous_log.sub_(log_p).mul_(probabilities).abs_().sum(dim=-1)


class TermReducer:
    """TDDS's first depth, one epoch at a time: the term ``sum_c |p_t (log(p_t + 1e-8) - log(p_{t-1} + 1e-8))|``
    of each sample against the previous epoch, as the official ``importance_evaluation.py`` (absolute value per
    class, 1e-8 inside the log). Keeps the previous epoch's log-probabilities (and which samples it trained); used
    on read, and by a reduced store's logger on write."""

    compares_epochs = True

    def __init__(self, num_samples: int):
        self.num_samples = int(num_samples)
        self.previous_log: torch.Tensor | None = None
        self.previous_seen: torch.Tensor | None = None
        self.current: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (epoch, log-probabilities, seen)

    def step(self, logits: torch.Tensor, seen: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``logits`` (overwritten: a softmax in place) -> the term (None for the first epoch) and where it holds."""
        probabilities, log_p = softmax_and_log(logits)
        term = pair_seen = None
        if self.previous_log is not None:  # computed in the previous epoch's buffer
            term = pair_term(self.previous_log, log_p, probabilities)
            pair_seen = seen & self.previous_seen
        self.previous_log, self.previous_seen = log_p, seen
        return term, (pair_seen if pair_seen is not None else torch.zeros_like(seen))

    def batch(self, epoch: int, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """For a logger, batch by batch: the terms of these samples against the previous epoch (NaN where it did
        not train them, and throughout the first epoch). Holds two epochs of log-probabilities, dense by sample."""
        if (
            self.current is None or self.current[0] != epoch
        ):  # a new epoch: the one just ended becomes previous
            if self.current is not None:
                _, self.previous_log, self.previous_seen = self.current
            shape = (self.num_samples, values.shape[-1])
            self.current = (
                epoch,
                torch.full(shape, float("nan"), device=values.device),
                torch.zeros(self.num_samples, dtype=torch.bool, device=values.device),
            )
        probabilities, log_p = softmax_and_log(values.float().nan_to_num())
        index = index.to(values.device)
        self.current[1][index], self.current[2][index] = log_p, True
        if self.previous_log is None:
            return torch.full(index.shape, float("nan"), device=values.device)
        term = pair_term(self.previous_log[index], log_p, probabilities)
        return term.where(self.previous_seen[index], float("nan"))

    def state_dict(self) -> dict:
        return {
            "previous_log": self.previous_log,
            "previous_seen": self.previous_seen,
            "current": self.current,
        }

    def load_state_dict(self, state: dict) -> None:
        self.previous_log, self.previous_seen = state["previous_log"], state["previous_seen"]
        self.current = state["current"]


def window_scores(terms: torch.Tensor, valid: torch.Tensor, pairs: int, decay: float) -> torch.Tensor:
    """TDDS's second depth: inside each window of ``pairs`` consecutive terms, the L2 norm of the terms' deviations
    from their window mean (over the pairs that trained the sample); windows weighted ``decay * (1 - decay)^j``, j
    counting back from the last. One window at a time: an ``(N, pairs)`` temporary."""
    count = terms.shape[0] - pairs + 1
    weights = decay * (1.0 - decay) ** torch.arange(count - 1, -1, -1, dtype=torch.float64)
    score = torch.zeros(terms.shape[1], dtype=torch.float64)
    for window, weight in enumerate(weights.tolist()):
        window_terms = terms[window : window + pairs]
        window_valid = valid[window : window + pairs].double()
        mean = (window_terms * window_valid).sum(0) / window_valid.sum(0).clamp_min(1)
        score += weight * (window_terms - mean).mul_(window_valid).square_().sum(0).sqrt_()
    return score


@register_sampler("tdds")
class TDDSDataLoader(RankingSampler):
    """Static: keep the highest-scoring (most informative) fraction, as TDDS selects.

    As the official ``data_subset.py``, no class balancing and no stratification; ties broken at random; scores
    that declare the opposite direction keep their lowest (``higher_is_harder`` overrides). ``official_rounding`` keeps
    the official count, N - int(p * N). Definition, defaults and differences from the paper and official code:
    docs/methods.md#tdds.
    """

    paper = TDDSImportance.paper
    static = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        official_rounding: bool = False,
        **kwargs,
    ):
        super().__init__(dataset, pruning_rate, static=True, **kwargs)  # higher_is_harder: RankingSampler's
        if official_rounding:  # data_subset.py keeps data_mask[int(subset_rate * N):]
            self.required_num_samples = self.total_num_samples - int(
                self.pruning_rate * self.total_num_samples
            )

    def compute_subset(self, sample_importance) -> torch.Tensor:
        return self.keep_hardest(sample_importance, default_higher_is_harder=True)
