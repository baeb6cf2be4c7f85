"""Samplers against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datacull import (
    CCSDataLoader,
    ImportanceScores,
    MetriQDataLoader,
    RCAPDataLoader,
    RS2DataLoader,
    TDDSDataLoader,
)
from datacull.errors import InputError
from datacull.methods.ccs import stratum_budgets
from datacull.methods.random import RandomDataLoader
from datacull.sampling import apportion

from ..helpers import tensor_dataset


def test_apportion_caps_saturated_groups_and_sums_exactly():
    counts = apportion(torch.tensor([8.0, 1.0, 1.0]), 10, torch.tensor([4, 10, 10]))
    assert counts.tolist() == [4, 3, 3]
    assert apportion(torch.tensor([1.0, 1.0, 1.0]), 10, torch.tensor([10, 10, 10])).sum() == 10
    assert apportion(torch.tensor([0.0, 1.0]), 5, torch.tensor([10, 2])).tolist() == [
        3,
        2,
    ]  # zero weight fills last


def test_ccs_budget_goes_to_small_strata_first():
    # budget 10 over strata of sizes 1, 2, 50, 50: 1, then 2 (<= 9 // 3), then 3 and 4
    assert stratum_budgets(torch.tensor([50, 1, 50, 2]), 10).tolist() == [3, 1, 4, 2]


def test_ccs_drops_the_hardest_beta_fraction_then_covers_every_stratum():
    scores = ImportanceScores(np.arange(100.0), higher_is_harder=False)  # low AUM = hard
    loader = CCSDataLoader(tensor_dataset([0] * 100), pruning_rate=0.8, beta=0.1, num_strata=4, seed=0)
    kept = loader.resample(scores)
    assert kept.numel() == 20 and kept.min() >= 10  # the 10 lowest (hardest) are gone
    strata = torch.bucketize(kept.double(), torch.tensor([32.5, 55.0, 77.5]))
    assert torch.bincount(strata, minlength=4).tolist() == [5, 5, 5, 5]


def test_ccs_direction_follows_the_importance_unless_overridden():
    hard_is_high = ImportanceScores(np.arange(10.0), higher_is_harder=True)
    kept = CCSDataLoader(tensor_dataset([0] * 10), 0.5, beta=0.5, num_strata=1, seed=0).resample(hard_is_high)
    assert sorted(kept.tolist()) == [0, 1, 2, 3, 4]
    kept = CCSDataLoader(
        tensor_dataset([0] * 10), 0.5, beta=0.5, num_strata=1, descending=False, seed=0
    ).resample(hard_is_high)
    assert sorted(kept.tolist()) == [5, 6, 7, 8, 9]


def test_ccs_refuses_beta_above_the_pruning_rate():
    with pytest.raises(InputError, match="beta"):
        CCSDataLoader(tensor_dataset([0] * 10), pruning_rate=0.3, beta=0.4)


def test_tdds_loader_keeps_the_highest_scores_and_reads_direction():
    scores = np.array([0.3, 0.9, 0.1, 0.5])
    assert sorted(TDDSDataLoader(tensor_dataset([0] * 4), 0.5).resample(scores).tolist()) == [1, 3]
    easy_is_high = ImportanceScores(scores, higher_is_harder=False)
    assert sorted(TDDSDataLoader(tensor_dataset([0] * 4), 0.5).resample(easy_is_high).tolist()) == [0, 2]


def test_metriq_keeps_more_of_the_classes_with_more_error():
    labels = [0] * 50 + [1] * 50 + [2] * 50
    loader = MetriQDataLoader(
        tensor_dataset(labels), pruning_rate=0.6, class_wise_acc=[0.9, 0.7, 0.4], seed=0
    )
    # densities proportional to errors .1 : .3 : .6, 60 kept -> 6, 18, 36 (class 2 is under its cap of 50)
    assert loader.class_quotas().tolist() == [6, 18, 36]
    kept = loader.resample(None)
    assert torch.bincount(torch.tensor(labels)[kept]).tolist() == [6, 18, 36]


def test_metriq_saturated_class_keeps_everything_and_the_rest_is_redistributed():
    labels = [0] * 10 + [1] * 90
    loader = MetriQDataLoader(tensor_dataset(labels), pruning_rate=0.5, class_wise_acc=[0.0, 0.9], seed=0)
    # class 0 would get 50 * (1*10)/(1*10 + .1*90) > 10: capped at 10, class 1 takes the other 40
    assert loader.class_quotas().tolist() == [10, 40]


def test_metriq_validates_class_accuracies():
    with pytest.raises(InputError, match="2 entries but the dataset has 3 classes"):
        MetriQDataLoader(tensor_dataset([0, 1, 2]), 0.5, class_wise_acc=[0.5, 0.5])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        MetriQDataLoader(tensor_dataset([0, 1]), 0.5, class_wise_acc=[0.5, 1.5])


def test_rs2_without_replacement_sees_every_sample_before_repeating():
    loader = RS2DataLoader(tensor_dataset([0] * 10), pruning_rate=0.7, seed=0)  # 3 per round
    rounds = [set(loader.resample(None).tolist()) for _ in range(4)]
    assert set().union(*rounds[:3]) | rounds[3] == set(range(10))
    first_cycle = rounds[0] | rounds[1] | rounds[2]
    assert len(first_cycle) == 9 and all(len(r) == 3 for r in rounds)


def test_rs2_stratified_with_replacement_is_class_proportional():
    labels = [0] * 20 + [1] * 80
    loader = RS2DataLoader(
        tensor_dataset(labels), 0.5, sampling_with_replacement=True, class_balanced=True, seed=0
    )
    kept = loader.resample(None)
    assert torch.bincount(torch.tensor(labels)[kept]).tolist() == [10, 40]


def test_class_balancing_has_one_name_and_the_old_ones_still_choose_the_same_subset():
    import warnings

    labels = [0] * 20 + [1] * 80
    data = tensor_dataset(labels)
    new = RandomDataLoader(data, 0.5, class_balanced=True, seed=4).resample(None)
    with pytest.warns(FutureWarning, match="stratified= is the old name of class_balanced="):
        old = RandomDataLoader(data, 0.5, stratified=True, seed=4).resample(None)
    assert torch.equal(old, new)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error", FutureWarning
        )  # 1.0.2's own keyword: no warning for code written for it
        original = RS2DataLoader(data, 0.5, sampling_with_replacement=True, stratify=True, seed=0).resample(
            None
        )
    renamed = RS2DataLoader(data, 0.5, sampling_with_replacement=True, class_balanced=True, seed=0).resample(
        None
    )
    assert torch.equal(original, renamed)


def test_rcap_official_mass_follows_sqrt_of_trained_importance_times_prior():
    labels = torch.tensor([0] * 40 + [1] * 40)
    scores = torch.cat([torch.full((40,), 1 / 40), torch.full((40,), 1 / 40)])
    loader = RCAPDataLoader(tensor_dataset(labels), pruning_rate=0.5, class_mass="trained_importance", seed=0)
    first = loader.resample(scores.numpy())
    assert torch.bincount(labels[first]).tolist() == [20, 20]  # equal mass, equal priors
    # class 0's importance concentrated on samples it did not train last round -> lower mass over them
    scores = torch.where(torch.isin(torch.arange(80), first), 0.0, 1.0) * (labels == 0) + (labels == 1) / 40
    scores[labels == 0] /= scores[labels == 0].sum()
    mass = torch.tensor(
        [float(scores[first][labels[first] == 0].sum()), float(scores[first][labels[first] == 1].sum())]
    )
    second = loader.resample(scores.numpy())
    expected = apportion(torch.sqrt(mass.double() * 0.5), 40, torch.tensor([40, 40]), minimum=1)
    assert torch.bincount(labels[second], minlength=2).tolist() == expected.tolist()


def test_rcap_default_mass_is_the_class_wise_aggregated_loss_its_scores_carry():
    labels = torch.tensor([0] * 30 + [1] * 30 + [2] * 40)
    probabilities = torch.cat(
        [torch.full((30,), 1 / 30), torch.full((30,), 1 / 30), torch.full((40,), 1 / 40)]
    )
    class_loss = np.array([0.01, 0.25, 1.0])
    loader = RCAPDataLoader(tensor_dataset(labels), pruning_rate=0.5, seed=0)
    kept = loader.resample(ImportanceScores(probabilities, higher_is_harder=True, class_loss=class_loss))
    prior = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)
    expected = apportion(
        torch.sqrt(torch.from_numpy(class_loss) * prior), 50, torch.tensor([30, 30, 40]), minimum=1
    )
    assert torch.bincount(labels[kept]).tolist() == expected.tolist()
    # scores without a class loss (another importance): the mean score of the samples each class trained last round
    again = loader.resample(probabilities.numpy())
    assert again.numel() == 50


def test_apportion_with_a_minimum_gives_every_group_its_floor_first():
    assert apportion(torch.tensor([1.0, 0.0, 1e-9]), 10, torch.tensor([10, 10, 10]), minimum=1).tolist() == [
        8,
        1,
        1,
    ]
    # too little to go round: the largest weights get theirs
    assert apportion(torch.tensor([0.1, 0.5, 0.4]), 2, torch.tensor([5, 5, 5]), minimum=1).tolist() == [
        0,
        1,
        1,
    ]
    assert apportion(torch.tensor([1.0, 1.0]), 3, torch.tensor([0, 5]), minimum=1).tolist() == [0, 3]


def test_rcap_refuses_an_unknown_class_mass():
    with pytest.raises(InputError, match="class_mass must be one of loss, trained_importance"):
        RCAPDataLoader(tensor_dataset([0, 1]), 0.5, class_mass="sum")


@pytest.mark.parametrize(
    "rate, table, beta",
    [
        (0.3, "cifar10", 0.0),
        (0.5, "cifar10", 0.0),
        (0.7, "cifar10", 0.1),
        (0.75, "cifar10", 0.1),
        (0.9, "cifar10", 0.3),
        (0.95, "cifar10", 0.3),
        (0.1, "cifar10", 0.0),
        (0.8, "imagenet", 0.2),
    ],
)
def test_ccs_beta_auto_takes_the_papers_value_for_the_pruning_rate(rate, table, beta):
    loader = CCSDataLoader(tensor_dataset([0] * 20), pruning_rate=rate, beta="auto", beta_table=table)
    assert loader.beta == pytest.approx(beta)


def test_ccs_an_explicit_beta_wins_and_an_unknown_table_is_refused():
    assert CCSDataLoader(tensor_dataset([0] * 20), pruning_rate=0.9, beta=0.05).beta == 0.05
    with pytest.raises(InputError, match="beta_table must be one of cifar10, imagenet"):
        CCSDataLoader(tensor_dataset([0] * 20), pruning_rate=0.9, beta_table="svhn")


def test_rcap_draws_in_proportion_to_importance():
    labels = torch.zeros(4, dtype=torch.long)
    probabilities = np.array([0.7, 0.1, 0.1, 0.1])
    picks = torch.zeros(4)
    for seed in range(2000):
        picks[RCAPDataLoader(tensor_dataset(labels), 0.75, seed=seed).resample(probabilities)] += 1
    # one of four kept: the draw is a single pick with the given probabilities
    assert picks[0] / 2000 == pytest.approx(0.7, abs=0.04) and picks[1:].sum() / 2000 == pytest.approx(
        0.3, abs=0.04
    )


def test_scores_pointing_the_other_way_are_drawn_by_hardness_rank():
    from datacull.sampling import sampling_weights

    aum = ImportanceScores([0.5, -2.0, 3.0, 0.0], higher_is_harder=False)  # sample 1 hardest, 2 easiest
    assert sampling_weights(aum).tolist() == [2.0, 4.0, 1.0, 3.0]
    native = ImportanceScores([0.2, 0.8], higher_is_harder=True)
    assert sampling_weights(native).tolist() == [0.2, 0.8]


def test_rcap_refuses_negative_probabilities():
    with pytest.raises(InputError, match="negative"):
        RCAPDataLoader(tensor_dataset([0, 0]), 0.5).resample(np.array([0.5, -0.1]))
