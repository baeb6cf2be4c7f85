"""The baseline importance scores against small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datacull import DCLogger
from datacull.errors import InputError
from datacull.methods.cartography import CartographyImportance
from datacull.methods.el2n import EL2NImportance
from datacull.methods.entropy import EntropyImportance
from datacull.methods.forgetting import ForgettingImportance
from datacull.methods.grand import GraNdImportance
from datacull.methods.least_confidence import LeastConfidenceImportance
from datacull.methods.loss import LossImportance
from datacull.methods.margin import MarginImportance
from datacull.methods.uniform import UniformImportance

from ..helpers import log_epochs, tensor_dataset

LOG3 = math.log(3.0)


def logger_with(tmp_path, name, trajectory) -> DCLogger:
    logger = DCLogger(tmp_path / name)
    log_epochs(logger, trajectory)
    return logger


def test_el2n_is_the_mean_error_norm(tmp_path):
    # sample 0 (label 0): p = (.5, .5) then (.75, .25): error norms sqrt(.5) and sqrt(.125)
    # sample 1 (label 1): p = (.75, .25) then (.5, .5): error norms sqrt(1.125) and sqrt(.5)
    logger = logger_with(tmp_path, "logits", [[[0.0, 0.0], [LOG3, 0.0]], [[LOG3, 0.0], [0.0, 0.0]]])
    scores = EL2NImportance(tensor_dataset([0, 1]), 2, logger).compute_importance()
    expected = [(math.sqrt(0.5) + math.sqrt(0.125)) / 2, (math.sqrt(1.125) + math.sqrt(0.5)) / 2]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores.higher_is_harder is True


def test_el2n_reads_only_the_first_trajectory_length_epochs(tmp_path):
    logger = logger_with(tmp_path, "logits", [[[0.0, 0.0]], [[9.0, 0.0]]])
    scores = EL2NImportance(tensor_dataset([1]), 1, logger).compute_importance()
    np.testing.assert_allclose(scores, [math.sqrt(0.5)], rtol=1e-6)


def test_grand_equals_the_last_layer_gradient_norm_computed_by_autograd(tmp_path):
    torch.manual_seed(0)
    head = torch.nn.Linear(5, 3)
    features = torch.randn(4, 5)
    labels = torch.tensor([0, 2, 1, 2])
    expected = []
    for feature, label in zip(features, labels, strict=True):
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(feature[None]), label[None]).backward()
        expected.append(torch.cat([head.weight.grad.flatten(), head.bias.grad]).norm().item())
    logits = head(features).detach()
    logits_logger = logger_with(tmp_path, "logits", logits[None])
    norms_logger = logger_with(tmp_path, "feature_norm", features.norm(dim=1)[None])
    scores = GraNdImportance(tensor_dataset(labels), 1, logits_logger, norms_logger).compute_importance()
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert scores.higher_is_harder is True


def test_forgetting_counts_drops_and_ranks_never_learned_hardest(tmp_path):
    right, wrong = [5.0, 0.0], [0.0, 5.0]  # argmax 0 (correct for label 0) or 1
    correctness = {
        0: [right, wrong, right, wrong],  # two forgetting events
        1: [wrong, wrong, wrong, wrong],  # never learned: 4 epochs added
        2: [right, right, right, right],  # unforgettable
        3: [wrong, right, right, right],  # learned once, never forgotten
    }
    trajectory = torch.tensor([[correctness[i][epoch] for i in range(4)] for epoch in range(4)])
    logger = logger_with(tmp_path, "logits", trajectory)
    scores = ForgettingImportance(tensor_dataset([0, 0, 0, 0]), 4, logger).compute_importance()
    assert scores.tolist() == [2.0, 4.0, 0.0, 0.0] and scores.higher_is_harder is True


def test_forgetting_compares_consecutive_presentations_and_unseen_samples_are_neutral(tmp_path):
    logger = DCLogger(tmp_path, num_samples=3)
    logger.log_metric(0, torch.tensor([0, 1]), torch.tensor([[5.0, 0.0], [5.0, 0.0]]))  # both correct
    logger.log_metric(1, torch.tensor([1]), torch.tensor([[0.0, 5.0]]))  # sample 1 forgets
    logger.log_metric(2, torch.tensor([0]), torch.tensor([[0.0, 5.0]]))  # sample 0 forgets after a gap
    logger.flush()
    scores = ForgettingImportance(tensor_dataset([0, 0, 0]), 3, logger).compute_importance()
    assert scores.tolist() == [1.0, 1.0, 1.0]  # sample 2 was never trained: the mean of the others


def test_latest_loss_starts_equal_then_keeps_each_sample_latest_loss(tmp_path):
    logger = DCLogger(tmp_path, num_samples=3)
    importance = LossImportance(tensor_dataset([0, 1, 2]), logger)
    np.testing.assert_allclose(importance.compute_importance(), [math.log(3)] * 3)
    logger.log_metric(0, torch.arange(3), torch.tensor([0.5, 1.5, 2.5]))
    logger.flush()
    np.testing.assert_allclose(importance.compute_importance(), [0.5, 1.5, 2.5])
    logger.log_metric(1, torch.tensor([1]), torch.tensor([0.25]))  # only sample 1 trained
    logger.flush()
    scores = importance.compute_importance()
    np.testing.assert_allclose(scores, [0.5, 0.25, 2.5])
    assert scores.higher_is_harder is True and logger.saved_epochs() == []  # read once, then deleted


def test_mean_loss_averages_the_trained_epochs_and_keeps_the_files(tmp_path):
    logger = DCLogger(tmp_path, num_samples=2)
    logger.log_metric(0, torch.arange(2), torch.tensor([1.0, 3.0]))
    logger.log_metric(1, torch.tensor([0]), torch.tensor([2.0]))
    logger.log_metric(2, torch.arange(2), torch.tensor([9.0, 9.0]))  # beyond trajectory_length
    logger.flush()
    importance = LossImportance(tensor_dataset([0, 1]), logger, mode="mean", trajectory_length=2)
    np.testing.assert_allclose(importance.compute_importance(), [1.5, 3.0])
    assert logger.saved_epochs() == [0, 1, 2]


def test_loss_is_online_only_in_latest_mode_and_refuses_other_modes(tmp_path):
    assert LossImportance.is_online(mode="latest") and not LossImportance.is_online(mode="mean")
    with pytest.raises(InputError, match="importance.mode"):
        LossImportance(tensor_dataset([0]), DCLogger(tmp_path), mode="last")


UNCERTAINTY_LOGITS = [
    [[math.log(2.0), 0.0, 0.0], [5.0, 0.0, 0.0]],  # epoch 0: sample 0 p = (.5, .25, .25)
    [[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]],  # epoch 1: sample 1 p = (.5, .25, .25)
]


@pytest.mark.parametrize(
    "importance_cls, expected, higher_is_harder",
    [
        (EntropyImportance, 1.5 * math.log(2.0), True),  # -(.5 ln .5 + 2 * .25 ln .25)
        (MarginImportance, 0.25, False),  # .5 - .25
        (LeastConfidenceImportance, 0.5, True),  # 1 - .5
    ],
)
def test_uncertainty_scores_read_each_sample_latest_logits(
    tmp_path, importance_cls, expected, higher_is_harder
):
    logger = DCLogger(tmp_path, num_samples=3)
    logger.log_metric(0, torch.arange(2), torch.tensor(UNCERTAINTY_LOGITS[0]))
    logger.log_metric(1, torch.tensor([1]), torch.tensor(UNCERTAINTY_LOGITS[1][1:]))  # sample 0 not trained
    logger.log_metric(2, torch.tensor([0]), torch.tensor([[9.0, 0.0, 0.0]]))  # beyond trajectory_length
    logger.flush()
    scores = importance_cls(tensor_dataset([0, 1, 2]), 2, logger).compute_importance()
    # samples 0 and 1 end with the same prediction; sample 2 was never trained and is neutral
    np.testing.assert_allclose(scores, [expected] * 3, rtol=1e-6)
    assert scores.higher_is_harder is higher_is_harder


def test_uncertainty_scores_order_confident_and_uncertain_predictions(tmp_path):
    logger = logger_with(tmp_path, "logits", [[[4.0, 0.0, 0.0], [1.0, 0.8, 0.0]]])
    dataset = tensor_dataset([0, 0])
    entropy = EntropyImportance(dataset, 1, logger).compute_importance()
    margin = MarginImportance(dataset, 1, logger).compute_importance()
    confidence = LeastConfidenceImportance(dataset, 1, logger).compute_importance()
    assert entropy[1] > entropy[0] and margin[1] < margin[0] and confidence[1] > confidence[0]


def test_cartography_confidence_and_population_std_of_the_gold_probability(tmp_path):
    # label 0: p(gold) = .5 then .75 -> confidence .625, population std .125
    logger = logger_with(tmp_path, "logits", [[[0.0, 0.0]], [[LOG3, 0.0]]])
    dataset = tensor_dataset([0])
    confidence = CartographyImportance(dataset, 2, logger, metric="confidence").compute_importance()
    variability = CartographyImportance(dataset, 2, logger).compute_importance()  # the default metric
    every_epoch = CartographyImportance(dataset, None, logger).compute_importance()  # None: all logged epochs
    np.testing.assert_allclose(confidence, [0.625], rtol=1e-6)
    np.testing.assert_allclose(variability, [0.125], rtol=1e-5)
    assert confidence.higher_is_harder is False and variability.higher_is_harder is True
    np.testing.assert_array_equal(every_epoch, variability)


def test_cartography_refuses_an_unknown_metric(tmp_path):
    with pytest.raises(InputError, match="confidence, variability"):
        CartographyImportance(tensor_dataset([0]), 2, DCLogger(tmp_path), metric="correctness")


def test_uniform_scores_are_equal_and_point_nowhere():
    scores = UniformImportance(tensor_dataset([0, 1, 1])).compute_importance()
    assert scores.tolist() == [1.0, 1.0, 1.0] and scores.higher_is_harder is None
    assert UniformImportance.requires == ()


def test_trajectory_scores_refuse_an_empty_trajectory(tmp_path):
    logger = logger_with(tmp_path, "logits", [[[0.0, 0.0]]])
    with pytest.raises(InputError, match="trajectory_length"):
        EL2NImportance(tensor_dataset([0]), 0, logger).compute_importance()
