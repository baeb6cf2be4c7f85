"""DCImportance and the trajectory-based scores, against hand-computed cases and plain-loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datacull import AUMImportance, DCImportance, DCLogger, ImportanceScores, RCAPImportance, TDDSImportance
from datacull.errors import InputError

from ..helpers import log_epochs, tensor_dataset


class WindowMeanLoss(DCImportance):
    """A custom importance written the way the original README shows."""

    higher_is_harder = True

    def __init__(self, dataset, window_size, logger_object, max_epochs):
        super().__init__(dataset=dataset, window_size=window_size, logger_object=logger_object)
        self.max_epochs = max_epochs

    def compute_importance(self):
        total = 0
        for epoch in range(self.max_epochs - self.window_size + 1):
            segment = self.extract_trajectory_segment(epoch)
            total = total + segment.mean(dim=0)
        return self.scores(total)


def test_custom_importance_subclass_reads_sliding_windows(tmp_path):
    logger = DCLogger(tmp_path)
    losses = torch.arange(12.0).reshape(4, 3)  # epoch e, sample i -> 3e + i
    log_epochs(logger, losses)
    importance = WindowMeanLoss(tensor_dataset([0, 1, 0]), window_size=2, logger_object=logger, max_epochs=4)
    segment, seen = importance.extract_trajectory_segment(1, return_seen=True)
    assert segment.shape == (2, 3) and seen.all() and segment[:, 0].tolist() == [3.0, 6.0]
    scores = importance.compute_importance()
    # windows (0,1), (1,2), (2,3): means 1.5, 4.5, 7.5 (+ i) -> 13.5 + 3 i
    assert isinstance(scores, ImportanceScores) and scores.higher_is_harder is True
    np.testing.assert_allclose(scores, [13.5, 16.5, 19.5])


def test_segment_marks_unseen_samples(tmp_path):
    logger = DCLogger(tmp_path, num_samples=3)
    logger.log_metric(0, torch.tensor([2]), torch.tensor([5.0]))
    logger.flush()
    importance = WindowMeanLoss(tensor_dataset([0, 1, 0]), 1, logger, 1)
    values, seen = importance.extract_trajectory_segment(0, return_seen=True)
    assert seen.tolist() == [[False, False, True]] and torch.isnan(values[0, :2]).all()


def test_segment_with_save_every_k_strides_over_saved_epochs(tmp_path):
    logger = DCLogger(tmp_path, save_every_k_epoch=2)
    log_epochs(logger, torch.arange(10.0).reshape(5, 2))
    importance = WindowMeanLoss(tensor_dataset([0, 1]), window_size=4, logger_object=logger, max_epochs=5)
    assert importance.extract_trajectory_segment(0)[:, 0].tolist() == [0.0, 4.0]


def test_flush_deletes_what_was_read(tmp_path):
    logger = DCLogger(tmp_path)
    log_epochs(logger, torch.zeros(2, 3))
    importance = WindowMeanLoss(tensor_dataset([0, 0, 0]), 1, logger, 2)
    importance.delete_read_epochs = True
    importance.extract_trajectory_segment(0)
    assert logger.saved_epochs() == [1]


def test_aum_is_the_mean_logit_margin(tmp_path):
    logger = DCLogger(tmp_path)
    logits = [
        [[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]],  # margins: 2-1 = 1, 1-3 = -2
        [[1.0, 1.5, 0.0], [0.0, 0.0, 2.0]],  # margins: 1-1.5 = -0.5, 2-0 = 2
    ]
    log_epochs(logger, logits)
    scores = AUMImportance(
        tensor_dataset([0, 2]), trajectory_length=2, logger_object=logger
    ).compute_importance()
    np.testing.assert_allclose(scores, [0.25, 0.0])
    assert scores.higher_is_harder is False


def test_aum_probability_space_uses_softmax_margins(tmp_path):
    logger = DCLogger(tmp_path)
    logits = torch.tensor([[[math.log(3.0), 0.0, 0.0]]])  # softmax = [0.6, 0.2, 0.2]
    log_epochs(logger, logits)
    scores = AUMImportance(tensor_dataset([0]), 1, logger, probability_space=True).compute_importance()
    np.testing.assert_allclose(scores, [0.4], rtol=1e-6)


def tdds_reference(logits: np.ndarray, window: int, decay: float) -> np.ndarray:
    """TDDS by plain loops over windows, pairs and classes (the formula of the official code)."""
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    epochs, samples, classes = probabilities.shape
    windows = epochs - window + 1
    total = np.zeros(samples)
    for k in range(windows):
        weight = decay * (1 - decay) ** (windows - 1 - k)
        for i in range(samples):
            terms = []
            for t in range(k, k + window - 1):
                p, q = probabilities[t, i], probabilities[t + 1, i]
                terms.append(
                    sum(abs(q[c] * (math.log(q[c] + 1e-8) - math.log(p[c] + 1e-8))) for c in range(classes))
                )
            mean = sum(terms) / len(terms)
            total[i] += weight * math.sqrt(sum((term - mean) ** 2 for term in terms))
    return total


def test_tdds_hand_computed_single_window(tmp_path):
    logger = DCLogger(tmp_path)
    log_epochs(logger, [[[0.0, 0.0]], [[math.log(4.0), 0.0]], [[0.0, 0.0]]])  # p = .5/.5, .8/.2, .5/.5
    first = 0.8 * math.log(0.8 / 0.5) + 0.2 * abs(math.log(0.2 / 0.5))
    second = 0.5 * abs(math.log(0.5 / 0.8)) + 0.5 * math.log(0.5 / 0.2)
    expected = 0.5 * math.sqrt(2) * abs(first - second) / 2
    scores = TDDSImportance(
        tensor_dataset([0]), trajectory_length=3, window_size=3, decay=0.5, logger_object=logger
    ).compute_importance()
    np.testing.assert_allclose(scores, [expected], rtol=1e-5)
    assert scores.higher_is_harder is True


def test_tdds_matches_the_loop_reference_on_random_trajectories(tmp_path):
    logits = np.random.default_rng(0).normal(size=(7, 6, 4)) * 2
    logger = DCLogger(tmp_path)
    log_epochs(logger, logits)
    scores = TDDSImportance(tensor_dataset([0, 1, 2, 3, 0, 1]), 6, 3, 0.7, logger).compute_importance()
    np.testing.assert_allclose(scores, tdds_reference(logits[:6], 3, 0.7), rtol=1e-4)


def test_tdds_refuses_a_window_longer_than_the_trajectory(tmp_path):
    with pytest.raises(InputError, match="window_size"):
        TDDSImportance(
            tensor_dataset([0]),
            trajectory_length=3,
            window_size=4,
            decay=0.9,
            logger_object=DCLogger(tmp_path),
        )


def test_rcap_starts_uniform_then_follows_clipped_latest_losses(tmp_path):
    logger = DCLogger(tmp_path, num_samples=4)
    importance = RCAPImportance(tensor_dataset([0, 0, 1, 1]), logger_object=logger, beta=1.0)
    np.testing.assert_allclose(importance.compute_importance(), [0.5] * 4)
    logger.log_metric(0, torch.arange(4), torch.tensor([0.1, 0.5, 3.0, 0.2]))
    logger.flush()
    clip = math.log(2)
    class0 = np.exp([0.1, 0.5]) / np.exp([0.1, 0.5]).sum()
    class1 = np.exp([clip, 0.2]) / np.exp([clip, 0.2]).sum()
    np.testing.assert_allclose(importance.compute_importance(), np.r_[class0, class1], rtol=1e-6)
    logger.log_metric(1, torch.tensor([0]), torch.tensor([0.3]))  # only sample 0 trained in epoch 1
    logger.flush()
    class0 = np.exp(np.array([0.3, 0.5]) / 1.0) / np.exp([0.3, 0.5]).sum()
    np.testing.assert_allclose(importance.compute_importance()[:2], class0, rtol=1e-6)
    assert logger.saved_epochs() == []  # RCAP reads each epoch once and deletes it (flush=True)


def test_rcap_temperature_flattens_the_distribution(tmp_path):
    logger = DCLogger(tmp_path)
    logger.log_metric(0, torch.arange(2), torch.tensor([0.1, 0.6]))
    logger.flush()
    sharp = RCAPImportance(tensor_dataset([0, 0]), logger, beta=0.1, clipping_threshold=1.0)
    sharp.delete_read_epochs = False
    flat = RCAPImportance(tensor_dataset([0, 0]), logger, beta=10.0, clipping_threshold=1.0)
    assert np.ptp(sharp.compute_importance()) > np.ptp(flat.compute_importance())


def test_importance_scores_keep_their_direction_through_indexing_and_pickling():
    import pickle

    scores = ImportanceScores([3.0, 1.0, 2.0], higher_is_harder=False)
    assert scores[[0, 2]].higher_is_harder is False
    assert pickle.loads(pickle.dumps(scores)).higher_is_harder is False
