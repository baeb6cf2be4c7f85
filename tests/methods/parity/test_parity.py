"""datacull against what each method's official code output on the same fixed inputs (``records/``, written by
``scripts/parity.py`` from a checkout of the official repository; the official code itself is not here).

Every test is named after its method and says in its assertion what moved. Where datacull differs on purpose, the
test holds the difference to exactly what docs/methods.md's "Parity" paragraph of the method says.
"""

from __future__ import annotations

import copy
import functools
import json
import math

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from datacull import DCLogger, ImportanceScores
from datacull.budget import Budget
from datacull.catalog import get_importance, get_sampler
from datacull.methods.ccs import stratum_budgets
from datacull.parts import build_loader
from datacull.sampling import sample_per_class
from datacull.schedules import rs2_cosine

from ...helpers import compose_config, tensor_dataset
from . import inputs


@functools.cache
def record(method: str) -> dict:
    data = json.loads((inputs.RECORDS / f"{method}.json").read_text())
    assert data["official"]["repository"] and len(data["official"]["commit"]) == 40, (
        f"{method}: record unnamed"
    )
    return data


@functools.cache
def dataset():
    return tensor_dataset(inputs.labels().tolist(), features=1)


@functools.cache
def sampler_config(name: str):
    return compose_config([f"sampler={name}"])


def sampler(name: str, pruning_rate: float, seed: int = 0, epochs: int = 10, data=None, **overrides):
    """The registered sampler built from its conf file, as the runner builds it (on the inputs' labels, or
    ``data``)."""
    cfg = copy.deepcopy(sampler_config(name))
    with open_dict(cfg):
        cfg.seed, cfg.sampler.pruning_rate = seed, pruning_rate
        cfg.sampler.update(overrides)
    return build_loader(
        cfg, get_sampler(name), data if data is not None else dataset(), Budget(epochs=epochs)
    )


@pytest.fixture(scope="module")
def logits_logger(tmp_path_factory):
    """The synthetic trajectory logged as a run logs it: every epoch's logits, batch by batch in its order."""
    logits, _ = inputs.trajectory()
    logger = DCLogger(tmp_path_factory.mktemp("parity") / "logits")
    for epoch in range(inputs.EPOCHS):
        for batch in inputs.presentation_batches(epoch):
            logger.log_metric(epoch, batch, logits[epoch][batch])
    logger.flush()
    return logger


def importance(name: str, logger: DCLogger, **params):
    return get_importance(name)(dataset=dataset(), logger_object=logger, **params).compute_importance()


def close(method: str, what: str, ours, official, tolerance: float) -> float:
    """Assert |ours - official| <= tolerance everywhere; the largest difference."""
    gap = float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(official, dtype=np.float64))))
    assert gap <= tolerance, (
        f"{method}: {what} moved from the official by {gap:.3g} (tolerance {tolerance:g})"
    )
    return gap


def same_order(method: str, ours, official) -> None:
    assert (np.argsort(ours, kind="stable") == np.argsort(official, kind="stable")).all(), (
        f"{method}: the ranking differs from the official one"
    )


# ---------------------------------------------------------------------------------------------------- scores
def test_aum_scores_match_official_aum_calculator(logits_logger):
    for case in record("aum")["cases"]:
        ours = importance("aum", logits_logger, **case["params"])
        close("aum", f"AUM over {case['params']}", ours, case["scores"], 2e-6)
        same_order("aum", ours, case["scores"])


def test_aum_probability_space_matches_ccs_accumulated_margin(logits_logger):
    official = record("ccs")["accumulated_margin"]
    ours = importance("aum", logits_logger, trajectory_length=official["epochs"], probability_space=True)
    # CCS sums where datacull averages (every sample is trained once per epoch: the same ranking)
    close(
        "ccs",
        "accumulated_margin (AUM in probability space)",
        ours * official["epochs"],
        official["scores"],
        1e-5,
    )


def test_el2n_matches_ccs_el2n(logits_logger):
    for case in record("el2n")["cases"]:
        epochs = case["params"]["trajectory_length"]
        ours = importance("el2n", logits_logger, trajectory_length=epochs)
        close("el2n", "EL2N (CCS's sum over epochs 0-9)", ours * epochs, case["sum_scores"], 1e-5)


def test_forgetting_counts_equal_official_example_forgetting(logits_logger):
    for case in record("forgetting")["cases"]:
        ours = importance("forgetting", logits_logger, **case["params"])
        assert np.array_equal(ours, case["scores"]), f"forgetting: counts over {case['params']} differ"


def test_tdds_scores_and_kept_sets_match_official(logits_logger):
    for case in record("tdds")["cases"]:
        ours = importance("tdds", logits_logger, **case["params"])
        close("tdds", f"TDDS over {case['params']}", ours, case["scores"], 1e-6 * max(case["scores"]))
        same_order("tdds", ours, case["scores"])
        for rate, official_kept in case["kept"].items():
            loader = sampler("tdds", float(rate), official_rounding=True)
            kept = loader.resample(ours)
            assert sorted(kept.tolist()) == official_kept, f"tdds: the kept set at p={rate} differs"
            default = sampler("tdds", float(rate)).resample(ours)
            assert set(default.tolist()) <= set(official_kept), "tdds: the default keeps other samples"


def test_tdds_official_rounding_keeps_the_official_count():
    for num_samples, rate, official in record("tdds")["kept_counts"]:
        loader = sampler("tdds", rate, data=tensor_dataset([0] * num_samples), official_rounding=True)
        assert loader.required_num_samples == official, f"tdds: N={num_samples}, p={rate}"


def test_rcap_scores_match_official_importance(tmp_path):
    losses = inputs.losses(5)
    for number, case in enumerate(record("rcap")["cases"]):
        logger = DCLogger(tmp_path / str(number), num_samples=inputs.NUM_SAMPLES)
        logger.log_metric(0, torch.arange(inputs.NUM_SAMPLES), losses)
        logger.flush()
        params = case["params"]
        ours = get_importance("rcap")(dataset(), logger, params["beta"], params["clipping_threshold"])
        close("rcap", f"scores at {params}", ours.compute_importance(), case["scores"], 1e-12)


# ---------------------------------------------------------------------------------------------------- samplers
def test_rcap_draws_inside_a_class_as_the_official_sampler():
    """The official np.random.choice(replace=False, p=...) against datacull's Gumbel-top-k, by distribution: the
    mean inclusion frequency of each class's samples in five bands of their score."""
    official = record("rcap")["sampling"]
    scores = torch.tensor(record("rcap")["cases"][0]["scores"], dtype=torch.float64)
    labels = inputs.labels()
    quotas = torch.tensor(official["class_counts"])
    loader = sampler("rcap", 1 - official["kept_fraction"], class_mass="trained_importance")
    assert loader.required_num_samples == quotas.sum(), "rcap: kept count differs from the official one"
    generator = torch.Generator().manual_seed(0)
    frequency = torch.zeros(inputs.NUM_SAMPLES, dtype=torch.float64)
    for _ in range(official["draws"]):
        frequency[sample_per_class(labels, quotas, generator, log_weights=scores.log())] += (
            1.0 / official["draws"]
        )
    theirs = torch.tensor(official["inclusion_frequency"])
    for label in range(inputs.NUM_CLASSES):
        members = torch.nonzero(labels == label).squeeze(1)
        bands = members[torch.argsort(scores[members])].tensor_split(5)
        close(
            "rcap",
            f"class {label}'s inclusion frequencies",
            [frequency[b].mean() for b in bands],
            [theirs[b].mean() for b in bands],
            0.06,
        )


def test_rcap_official_class_counts_are_ceilings_of_datacull_shares():
    official = record("rcap")["sampling"]
    loader = sampler("rcap", 1 - official["kept_fraction"], class_mass="trained_importance")
    scores = ImportanceScores(record("rcap")["cases"][0]["scores"], True)
    ours = np.bincount(inputs.labels().numpy()[loader.resample(scores).numpy()], minlength=inputs.NUM_CLASSES)
    # the official takes ceil of each class's share (its total may overshoot); datacull apportions exactly K
    assert np.all(np.abs(ours - official["class_counts"]) <= 1) and ours.sum() <= sum(
        official["class_counts"]
    )


def strata_of(pool: np.ndarray, top: float = 1.0) -> np.ndarray:
    """The stratum of each pool sample: 50 equal-width bins of [min, top * max] (datacull: top = 1, the maximum in
    the last bin; the official code: top = 1.0001, bins half-open)."""
    scores = inputs.spread_scores().numpy()[pool]
    low, high = scores.min(), scores.max() * top
    return np.clip(np.floor((scores - low) / ((high - low) / 50)), 0, 49).astype(int)


def equal_up_to_order_of_equal_strata(method: str, what: str, sizes, ours, theirs) -> None:
    """Per-stratum counts equal, except that strata of the same size may swap theirs (the official visits them
    in torch.argsort's unstable order)."""
    sizes, ours, theirs = np.asarray(sizes), np.asarray(ours), np.asarray(theirs)
    for size in np.unique(sizes):
        group = sizes == size
        assert sorted(ours[group]) == sorted(theirs[group]), (
            f"{method}: {what} differ in strata of size {size}"
        )


def test_ccs_cut_budgets_and_per_stratum_counts_match_official():
    scores = ImportanceScores(inputs.spread_scores().numpy(), False)
    for case in record("ccs")["cases"]:
        rate, beta = case["params"]["pruning_rate"], case["params"]["beta"]
        loader = sampler("ccs", rate, beta=beta, official_rounding=True)
        cut = loader.hardest_first(scores, default_higher_is_harder=False)[: loader.num_cut]
        assert sorted(cut.tolist()) == case["cut"], f"ccs: the beta={beta} cut differs"
        pool = np.setdiff1d(np.arange(inputs.NUM_SAMPLES), case["cut"])
        official_strata = dict(zip(pool.tolist(), strata_of(pool, 1.0001).tolist(), strict=True))
        sizes = np.bincount(list(official_strata.values()), minlength=50)
        budgets = stratum_budgets(torch.from_numpy(sizes), loader.required_num_samples).numpy()
        for selection in case["selections"]:
            assert len(selection) == loader.required_num_samples, f"ccs: kept count at p={rate}"
            theirs = np.bincount([official_strata[i] for i in selection], minlength=50)
            equal_up_to_order_of_equal_strata(
                "ccs", f"budgets at p={rate}, beta={beta}", sizes, budgets, theirs
            )
        if beta == 0:  # no pool score near a boundary: both bin ends give the same strata, end to end
            strata = dict(zip(pool.tolist(), strata_of(pool).tolist(), strict=True))
            assert strata == official_strata
            ours = np.bincount([strata[i] for i in loader.resample(scores).tolist()], minlength=50)
            equal_up_to_order_of_equal_strata("ccs", f"kept per stratum at p={rate}", sizes, ours, theirs)


# ---------------------------------------------------------------------------------------------------- RS2
def test_rs2_round_sizes_and_trained_samples_match_official():
    for case in record("rs2")["rounds"]:
        rate = round(1 - case["fraction"], 10)
        data = tensor_dataset([0] * case["num_samples"])
        loader = sampler("rs2", rate, data=data, official_rounding=True, drop_last=True)
        size = loader.required_num_samples
        assert size == case["coreset_size"], f"rs2: round size at N={case['num_samples']}, p={rate}"
        # the official wrap-around round is one sample short (end % (N + 1)); datacull's rounds all have K samples
        assert set(case["round_sizes"]) <= {size, size - 1}
        for official_size, official_trained in zip(case["round_sizes"], case["trained"], strict=True):
            subset = loader.resample()
            assert subset.numel() == size
            trained = loader.trained_part(subset, case["batch_size"]).numel()
            assert trained == official_size // case["batch_size"] * case[
                "batch_size"
            ] == official_trained or (
                official_size == size - 1 and trained == size // case["batch_size"] * case["batch_size"]
            ), f"rs2: samples trained per round (batch {case['batch_size']})"


def test_rs2_official_rounding_gives_the_official_round_size():
    for num_samples, rate, official in record("rs2")["round_size_counts"]:
        loader = sampler("rs2", rate, data=tensor_dataset([0] * num_samples), official_rounding=True)
        assert loader.required_num_samples == official, f"rs2: N={num_samples}, p={rate}"


def test_rs2_cosine_gives_the_official_learning_rate_at_every_step():
    for case in record("rs2")["schedules"]:
        epochs, per_epoch, lr = case["epochs"], case["steps_per_epoch"], case["lr"]
        factor = rs2_cosine(epochs, min_lr_factor=case["min_lr"] / lr)
        ours = [lr * factor((step / per_epoch) / epochs) for step in case["steps"]]
        close(
            "rs2",
            f"learning rate ({epochs} epochs of {per_epoch} steps)",
            np.divide(ours, case["lrs"]),
            np.ones(len(ours)),
            1e-9,
        )


# ---------------------------------------------------------------------------------------------------- MetriQ
def test_metriq_official_rounding_keeps_the_official_count():
    for num_samples, rate, official in record("metriq")["kept_counts"]:
        data = tensor_dataset([0] * num_samples)
        loader = sampler("metriq", rate, data=data, class_wise_acc=[0.5], official_rounding=True)
        assert loader.required_num_samples == official, f"metriq: N={num_samples}, p={rate}"


#: A case where class 8 saturates inside the official redistribution loop, so the loop skips class 9.
SKIPPING = {"class_wise_acc": [0.82, 0.0, 0.86, 0.03, 0.73, 0.18, 0.86, 0.54, 0.3, 0.42], "pruning_rate": 0.3}


def metriq_counts(case: dict) -> np.ndarray:
    params = case["params"]
    loader = sampler(
        "metriq", params["pruning_rate"], class_wise_acc=params["class_wise_acc"], official_rounding=True
    )
    return np.bincount(inputs.labels().numpy()[loader.resample().numpy()], minlength=inputs.NUM_CLASSES)


def test_metriq_class_counts_match_the_official_mean_over_seeds():
    """Where the official code runs as intended (no class quota floored to zero, no class saturating inside its
    redistribution loop), datacull's per-class counts are within one sample of the official mean over 40 seeds
    (the official floors each quota and tops up the total at random from any class)."""
    cases = [
        case for case in record("metriq")["cases"] if "class_counts" in case and case["params"] != SKIPPING
    ]
    assert cases
    for case in cases:
        ours = metriq_counts(case)
        assert ours.sum() == case["select_size"], "metriq: kept count differs from the official one"
        close("metriq", f"class counts at {case['params']}", ours, np.mean(case["class_counts"], 0), 1.0)


def test_metriq_official_failures_are_what_the_docs_say():
    """The official Auto diversifier takes idxs[-select_size:]: a class whose quota floors to 0 is kept whole,
    overfills the budget, and the top-up raises. datacull gives such a class its share (0 if its error is 0)."""
    failing = [case for case in record("metriq")["cases"] if "raises" in case]
    assert failing
    for case in failing:
        assert case["raises"].startswith("ValueError"), case["raises"]
        ours = metriq_counts(case)
        assert ours.sum() == case["select_size"]
        accuracy = np.asarray(case["params"]["class_wise_acc"])
        assert np.all(ours[accuracy == 1.0] == 0)


def test_metriq_official_redistribution_skips_a_class():
    """Its loop removes saturated classes from the list it iterates over: the class after each one misses that
    round's share (the rest is topped up at random). datacull's water-filling gives it its share."""
    case = next(case for case in record("metriq")["cases"] if case["params"] == SKIPPING)
    ours = metriq_counts(case)
    quotas = np.asarray(case["quota_counts"])
    short = np.nonzero(ours - quotas > 1)[0].tolist()
    assert short == [9], f"metriq: the classes the official loop shortchanges moved: {short}"
    assert sum(quotas) < case["select_size"] and ours[9] - quotas[9] == 6


# ---------------------------------------------------------------------------------------------------- InfoBatch
def test_infobatch_epochs_match_official():
    scores = ImportanceScores(inputs.losses(record("infobatch")["scores"]["epoch"]).double().numpy(), True)
    for case in record("infobatch")["cases"]:
        params = case["params"]
        loader = sampler(
            "infobatch", params["pruning_rate"], epochs=params["num_epochs"], delta=params["delta"]
        )
        pruned_epochs = 0
        for epoch, official in enumerate(case["epochs"]):
            loader.set_epoch(epoch)
            indices = loader.resample(scores)
            weights = loader.sample_weights[indices]
            upweighted = int((weights != 1).sum())
            assert indices.numel() == official["size"], f"infobatch: epoch {epoch}'s size at {params}"
            if official["size"] < inputs.NUM_SAMPLES:
                pruned_epochs += 1
                assert upweighted == official["upweighted"], f"infobatch: epoch {epoch}'s kept well-learned"
                assert math.isclose(float(weights.max()), official["weight"], rel_tol=1e-6)
                everything_else = np.setdiff1d(np.arange(inputs.NUM_SAMPLES), case["well_learned"])
                assert set(indices.tolist()) >= set(everything_else.tolist()), (
                    "infobatch: a hard sample skipped"
                )
                assert set(indices[weights != 1].tolist()) <= set(case["well_learned"]), (
                    "infobatch: the well-learned set"
                )
            else:  # annealing: datacull resets the weights; the official only when delta * E is an integer
                assert upweighted == 0
                official_reset = float(params["num_epochs"] * params["delta"]).is_integer()
                assert (official["upweighted"] == 0) == official_reset, "infobatch: the official weight reset"
        assert pruned_epochs == math.floor(params["num_epochs"] * params["delta"] + 1e-9)
