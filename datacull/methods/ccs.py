"""Coverage-centric Coreset Selection (CCS)."""

from __future__ import annotations

import logging
import math

import torch

from ..errors import InputError
from ..registry import register_sampler
from ..sampler_bases import RankingSampler
from ..sampling import as_score_tensor, kept_fraction, sample_per_class

log = logging.getLogger("datacull")


#: The CCS paper's hard-cutoff rate beta by pruning rate (Zheng et al., ICLR 2023): CIFAR-10 from its Appendix B
#: table (0.9 -> 0.3 is also the README's command); ImageNet's 0.8 and 0.9 from the README, its other rates as
#: CIFAR-10's. Between tabulated rates the value of the next lower rate applies; below the lowest, 0.
PAPER_BETA = {
    "cifar10": {0.3: 0.0, 0.5: 0.0, 0.7: 0.1, 0.8: 0.1, 0.9: 0.3},
    "imagenet": {0.3: 0.0, 0.5: 0.0, 0.7: 0.1, 0.8: 0.2, 0.9: 0.3},
}


def paper_beta(pruning_rate: float, table: str = "cifar10") -> float:
    """``beta=auto``: the CCS paper's beta for ``pruning_rate`` from the row of dataset ``table``."""
    if table not in PAPER_BETA:
        raise InputError(f"CCS sampler.beta_table must be one of {', '.join(PAPER_BETA)}; got {table!r}")
    rates = [rate for rate in PAPER_BETA[table] if rate <= float(pruning_rate) + 1e-9]
    return PAPER_BETA[table][max(rates)] if rates else 0.0


def stratum_budgets(sizes: torch.Tensor, budget: int) -> torch.Tensor:
    """CCS's allocation: visit strata from the smallest; each takes min(its size, remaining budget // strata left)."""
    budgets = torch.zeros_like(sizes)
    remaining = int(budget)
    order = torch.argsort(sizes, stable=True).tolist()
    for position, stratum in enumerate(order):  # at most num_strata iterations
        take = min(int(sizes[stratum]), remaining // (len(order) - position))
        budgets[stratum] = take
        remaining -= take
    return budgets


@register_sampler("ccs")
class CCSDataLoader(RankingSampler):
    """Static: drop the hardest beta fraction, then sample evenly across equal-width score strata.

    Coverage-centric coreset selection (Zheng et al., ICLR 2023): cut the floor(beta N) hardest samples, split the
    rest into ``num_strata`` equal-width score strata and fill the budget from the smallest stratum up, uniformly
    inside each; ``beta="auto"`` takes the paper's value for the pruning rate (:data:`PAPER_BETA`).
    ``official_rounding`` cuts and keeps the official counts, int(beta N) and int((1 - p) N). Definition, defaults
    and differences from the paper and official code: docs/methods.md#ccs.
    """

    paper = "Zheng et al., Coverage-centric Coreset Selection for High Pruning Rates, ICLR 2023"
    static = True
    #: CCSDataLoader(..., descending=...) as DataCull 1.0.2 documented it: accepted without a warning
    descending_is_its_1_0_2_keyword = True

    def __init__(
        self,
        dataset,
        pruning_rate: float,
        beta: float | str = "auto",
        num_strata: int = 50,
        beta_table: str = "cifar10",
        official_rounding: bool = False,
        **kwargs,
    ):
        if int(num_strata) < 1:
            raise InputError(f"CCS sampler.num_strata must be >= 1; got {num_strata}")
        super().__init__(dataset, pruning_rate, static=True, **kwargs)  # higher_is_harder: RankingSampler's
        removed = (
            self.pruning_rate
        )  # the fraction removed, whichever meaning the caller's value had (legacy.py)
        if beta == "auto":
            beta = paper_beta(removed, beta_table)
            log.info(
                "CCS beta=auto: %g, from the CCS paper's %s table (sampler.beta_table, whatever the data set) at "
                "pruning rate %g",
                beta,
                beta_table,
                removed,
            )
        if not 0.0 <= float(beta) <= removed:
            raise InputError(
                f"CCS needs 0 <= sampler.beta <= sampler.pruning_rate; got beta={beta}, pruning_rate={removed:g}"
            )
        self.beta = float(beta)
        self.num_strata = int(num_strata)
        self.num_cut = math.floor(self.total_num_samples * self.beta + 1e-9)
        if official_rounding:  # train.py: mis_num = int(mis_ratio * N), coreset_num = int(coreset_ratio * N)
            self.num_cut = int(self.beta * self.total_num_samples)
            self.required_num_samples = max(1, int(kept_fraction(removed) * self.total_num_samples))

    def compute_subset(self, sample_importance) -> torch.Tensor:
        scores = as_score_tensor(sample_importance)
        hardest_first = self.hardest_first(sample_importance, default_higher_is_harder=False)
        pool = hardest_first[self.num_cut :]
        pool_scores = scores[pool]
        low, high = pool_scores.min(), pool_scores.max()
        width = (high - low) / self.num_strata
        strata = (
            ((pool_scores - low) / width).floor().clamp(0, self.num_strata - 1).long()
            if width > 0
            else torch.zeros_like(pool)
        )
        sizes = torch.bincount(strata, minlength=self.num_strata)
        budgets = stratum_budgets(sizes, self.required_num_samples)
        return pool[sample_per_class(strata, budgets, self.rng)]
