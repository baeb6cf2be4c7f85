"""The baseline samplers against small hand-computed cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from datacull import ImportanceScores
from datacull.errors import InputError
from datacull.methods.ccs import CCSDataLoader
from datacull.methods.epsilon_greedy import EpsilonGreedyDataLoader
from datacull.methods.full import FullDataLoader
from datacull.methods.infobatch import InfoBatchDataLoader
from datacull.methods.random import RandomDataLoader
from datacull.methods.topk import TopKDataLoader
from datacull.methods.ucb import UCBDataLoader

from ..helpers import tensor_dataset

LABELS = [0, 0, 0, 0, 1, 1, 1, 1]
RISING = ImportanceScores(np.arange(1.0, 9.0), higher_is_harder=True)  # sample 7 hardest


def kept(loader, scores=None) -> list[int]:
    return sorted(loader.resample(scores).tolist())


def test_random_keeps_the_exact_count_once_and_stratified_is_class_proportional():
    labels = [0] * 20 + [1] * 80
    loader = RandomDataLoader(tensor_dataset(labels), 0.5, seed=3)
    first = kept(loader)
    assert len(first) == 50 and kept(loader) == first  # static: chosen once
    stratified = RandomDataLoader(tensor_dataset(labels), 0.5, class_balanced=True, seed=3).resample(None)
    assert torch.bincount(torch.tensor(labels)[stratified]).tolist() == [10, 40]


def test_random_draws_every_sample_equally_often():
    counts = torch.zeros(10)
    for seed in range(600):
        counts[RandomDataLoader(tensor_dataset([0] * 10), 0.7, seed=seed).resample(None)] += 1
    assert torch.allclose(counts / 600, torch.full((10,), 0.3), atol=0.06)


def test_topk_keeps_the_hardest_by_the_declared_direction():
    assert kept(TopKDataLoader(tensor_dataset(LABELS), 0.5), RISING) == [4, 5, 6, 7]
    easy_is_high = ImportanceScores(np.arange(1.0, 9.0), higher_is_harder=False)
    assert kept(TopKDataLoader(tensor_dataset(LABELS), 0.5), easy_is_high) == [0, 1, 2, 3]
    assert kept(TopKDataLoader(tensor_dataset(LABELS), 0.5, higher_is_harder=False), RISING) == [0, 1, 2, 3]


def test_descending_is_the_old_name_of_higher_is_harder_and_warns_except_on_ccs():
    """One name for a score's direction; CCS keeps DataCull 1.0.2's ``descending`` keyword without a warning."""
    with pytest.warns(FutureWarning, match="descending= is the old name of higher_is_harder="):
        old = TopKDataLoader(tensor_dataset(LABELS), 0.5, descending=False)
    assert old.higher_is_harder is False and kept(old, RISING) == [0, 1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        ccs = CCSDataLoader(tensor_dataset(LABELS), 0.5, beta=0.0, num_strata=1, descending=True)
    assert ccs.higher_is_harder is True


def test_topk_easiest_and_class_balanced():
    assert kept(TopKDataLoader(tensor_dataset(LABELS), 0.5, easiest=True), RISING) == [0, 1, 2, 3]
    balanced = TopKDataLoader(tensor_dataset(LABELS), 0.5, class_balanced=True)
    assert kept(balanced, RISING) == [2, 3, 6, 7]  # the two hardest of each class
    easiest = TopKDataLoader(tensor_dataset(LABELS), 0.5, class_balanced=True, easiest=True)
    assert kept(easiest, RISING) == [0, 1, 4, 5]


def test_topk_class_balanced_quotas_follow_class_sizes():
    labels = [0] * 3 + [1] * 9
    loader = TopKDataLoader(tensor_dataset(labels), 0.5, class_balanced=True)
    # 6 kept in proportion to sizes 3 : 9 -> 1.5 : 4.5, the tie of remainders going to the first class
    assert kept(loader, ImportanceScores(np.arange(12.0), True)) == [1, 2, 8, 9, 10, 11]


def test_full_keeps_everything_and_says_it_ignores_a_pruning_rate():
    assert kept(FullDataLoader(tensor_dataset(LABELS))) == list(range(8))
    with pytest.warns(UserWarning, match="pruning_rate=0.3 is ignored"):
        loader = FullDataLoader(tensor_dataset(LABELS), 0.3)
    assert kept(loader) == list(range(8)) and loader.required_num_samples == 8 and loader.pruning_rate == 0


LOSSES = ImportanceScores([0.1, 0.2, 0.3, 1.0, 2.0, 3.0], higher_is_harder=True)  # mean 1.1


def infobatch(num_epochs=8, delta=0.75, pruning_rate=0.5, seed=0) -> InfoBatchDataLoader:
    return InfoBatchDataLoader(tensor_dataset([0] * 6), pruning_rate, num_epochs, delta=delta, seed=seed)


def test_infobatch_skips_a_share_of_the_below_mean_samples_and_upweights_the_rest():
    loader = infobatch()
    chosen = set(loader.resample(LOSSES).tolist())
    # samples 0..3 are below the mean 1.1; half of them (2) are kept with weight 1 / (1 - .5) = 2
    assert {4, 5} <= chosen and len(chosen) == 4
    weights = loader.sample_weights
    assert weights[[4, 5]].tolist() == [1.0, 1.0]
    assert sorted(weights[list(chosen - {4, 5})].tolist()) == [2.0, 2.0]


def test_infobatch_rescaling_is_unbiased_over_the_random_choice():
    picks = torch.zeros(6)
    for seed in range(400):
        loader = infobatch(pruning_rate=0.75, seed=seed)
        chosen = loader.resample(LOSSES)
        picks[chosen] += loader.sample_weights[chosen]
    # floor(.25 * 4) = 1 well-learned sample kept, weight 4: each has expected total weight 1
    assert torch.allclose(picks / 400, torch.ones(6), atol=0.25) and picks[4:].tolist() == [400.0, 400.0]


def test_infobatch_prunes_nothing_on_equal_scores():
    loader = infobatch()
    assert kept(loader, ImportanceScores(np.full(6, np.log(10)), True)) == list(range(6))
    assert loader.sample_weights.tolist() == [1.0] * 6


def test_infobatch_reads_the_direction_of_other_scores():
    margins = ImportanceScores([3.0, 2.0, 1.0, 0.2, 0.1, -1.0], higher_is_harder=False)  # high = easy
    chosen = set(infobatch().resample(margins).tolist())
    assert {3, 4, 5} <= chosen and len(chosen) == 4  # above-mean (0.883) margins are the well-learned ones


@pytest.mark.parametrize("num_epochs, delta, last_pruning_epoch", [(8, 0.75, 5), (10, 0.875, 7), (4, 1.0, 3)])
def test_infobatch_anneals_on_full_data_with_weights_reset(num_epochs, delta, last_pruning_epoch):
    loader = infobatch(num_epochs=num_epochs, delta=delta)
    sizes = []
    for epoch in range(num_epochs):
        loader.set_epoch(epoch)
        sizes.append(loader.resample(LOSSES).numel())
    assert sizes == [4] * (last_pruning_epoch + 1) + [6] * (num_epochs - last_pruning_epoch - 1)
    if last_pruning_epoch < num_epochs - 1:
        assert loader.sample_weights.tolist() == [1.0] * 6  # reset even when delta * epochs is fractional


def test_infobatch_validates_its_schedule():
    with pytest.raises(InputError, match="num_epochs"):
        InfoBatchDataLoader(tensor_dataset([0]), 0.5, num_epochs=0)
    with pytest.raises(InputError, match="delta"):
        InfoBatchDataLoader(tensor_dataset([0]), 0.5, num_epochs=5, delta=1.5)


def test_ucb_keeps_the_largest_running_mean_plus_std():
    first_scores = ImportanceScores([1.0, 2.0, 3.0, 4.0], higher_is_harder=True)
    second_scores = ImportanceScores([1.0, 2.0, 0.0, 0.0], higher_is_harder=True)  # the trained ones got easy
    greedy = UCBDataLoader(tensor_dataset([0] * 4), 0.5, exploration=0.0)
    assert kept(greedy, first_scores) == [2, 3]
    # samples 2, 3: mean 3 + .8 (0 - 3) = .6 and 4 + .8 (0 - 4) = .8; samples 0, 1 keep 1 and 2
    assert kept(greedy, second_scores) == [0, 1]
    torch.testing.assert_close(greedy.score_mean, torch.tensor([1.0, 2.0, 0.6, 0.8], dtype=torch.float64))
    # variances .8 * 9 = 7.2 and .8 * 16 = 12.8: bounds .6 + 2.68 and .8 + 3.58 beat 1 and 2
    optimistic = UCBDataLoader(tensor_dataset([0] * 4), 0.5, exploration=1.0)
    kept(optimistic, first_scores)
    assert kept(optimistic, second_scores) == [2, 3]
    torch.testing.assert_close(
        optimistic.score_variance, torch.tensor([0, 0, 7.2, 12.8], dtype=torch.float64)
    )


def test_ucb_reads_the_direction_of_the_scores():
    aum = ImportanceScores([1.0, 2.0, 3.0, 4.0], higher_is_harder=False)  # sample 0 hardest
    assert kept(UCBDataLoader(tensor_dataset([0] * 4), 0.5), aum) == [0, 1]


def test_epsilon_greedy_exploits_the_top_and_explores_the_rest_uniformly():
    scores = ImportanceScores(np.arange(8.0), higher_is_harder=True)
    assert kept(EpsilonGreedyDataLoader(tensor_dataset(LABELS), 0.5, epsilon=0.0), scores) == [4, 5, 6, 7]
    explored = torch.zeros(8)
    for seed in range(300):
        chosen = EpsilonGreedyDataLoader(tensor_dataset(LABELS), 0.5, epsilon=0.5, seed=seed).resample(scores)
        assert {6, 7} <= set(chosen.tolist()) and chosen.numel() == 4
        explored[chosen] += 1
    # two of the six others, uniformly: each in a third of the rounds
    assert torch.allclose(explored[:6] / 300, torch.full((6,), 1 / 3), atol=0.08)


def test_running_samplers_validate_their_parameters():
    with pytest.raises(InputError, match="exploration"):
        UCBDataLoader(tensor_dataset([0]), 0.5, exploration=-1)
    with pytest.raises(InputError, match="epsilon"):
        EpsilonGreedyDataLoader(tensor_dataset([0]), 0.5, epsilon=2)
    with pytest.raises(InputError, match="ema_rate"):
        UCBDataLoader(tensor_dataset([0]), 0.5, ema_rate=0)
