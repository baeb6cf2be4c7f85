"""DCLogger: binary per-epoch storage, seen masks, save_every_k_epoch, damage detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datacull import DCLogger
from datacull.errors import TrajectoryError
from datacull.logger import load_epoch, saved_epochs


def test_round_trip_of_a_full_epoch_in_shuffled_batches(tmp_path):
    logger = DCLogger(tmp_path / "traj")
    values = torch.randn(10, 3)
    order = torch.randperm(10)
    for batch in order.split(4):
        logger.log_metric(0, batch, values[batch])
    logger.flush()
    loaded, seen = load_epoch(tmp_path / "traj", 0, 10)
    assert seen.all()
    np.testing.assert_allclose(loaded, values.numpy())
    assert sorted(p.name for p in (tmp_path / "traj").iterdir()) == ["epoch0.npy", "epoch0.seen.npy"]


def test_partial_epoch_records_which_samples_were_seen(tmp_path):
    logger = DCLogger(tmp_path, num_samples=6)
    logger.log_metric(0, torch.tensor([4, 1]), torch.tensor([0.5, 0.25]))
    logger.log_metric(1, torch.tensor([0]), torch.tensor([2.0]))  # a new epoch writes the previous one
    logger.flush()
    values, seen = load_epoch(tmp_path, 0, 6)
    assert seen.tolist() == [False, True, False, False, True, False]
    assert values[1] == 0.25 and values[4] == 0.5 and np.isnan(values[[0, 2, 3, 5]]).all()
    assert saved_epochs(tmp_path) == [0, 1]


def test_arrays_without_num_samples_are_padded_on_read(tmp_path):
    logger = DCLogger(tmp_path)
    logger.log_metric(0, torch.tensor([0, 2]), torch.tensor([1.0, 3.0]))
    logger.flush()
    values, seen = load_epoch(tmp_path, 0, 5)
    assert values.shape == (5,) and seen.tolist() == [True, False, True, False, False]


def test_only_every_kth_epoch_is_saved(tmp_path):
    logger = DCLogger(tmp_path, save_every_k_epoch=2)
    for epoch in range(5):
        logger.log_metric(epoch, torch.arange(3), torch.full((3,), float(epoch)))
    assert logger.saved_epochs() == [0, 2, 4]
    assert load_epoch(tmp_path, 4, 3)[0].tolist() == [4.0, 4.0, 4.0]


def test_flush_mid_epoch_then_more_batches_keeps_both_parts(tmp_path):
    logger = DCLogger(tmp_path, num_samples=4)
    logger.log_metric(3, torch.tensor([0, 1]), torch.tensor([1.0, 2.0]))
    logger.flush()
    logger.log_metric(3, torch.tensor([3]), torch.tensor([4.0]))
    logger.flush()
    values, seen = load_epoch(tmp_path, 3, 4)
    assert seen.tolist() == [True, True, False, True] and values[3] == 4.0 and values[0] == 1.0


def test_mismatched_shapes_are_refused(tmp_path):
    logger = DCLogger(tmp_path)
    with pytest.raises(ValueError, match="sample_idx"):
        logger.log_metric(0, torch.arange(3), torch.zeros(2))
    logger.log_metric(0, torch.arange(2), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="differs"):
        logger.log_metric(0, torch.arange(2), torch.zeros(2, 5))


def test_indices_beyond_num_samples_are_refused(tmp_path):
    logger = DCLogger(tmp_path, num_samples=3)
    logger.log_metric(0, torch.tensor([5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        logger.flush()


def test_truncated_file_is_reported_not_used(tmp_path):
    logger = DCLogger(tmp_path)
    logger.log_metric(0, torch.arange(100), torch.randn(100, 10))
    logger.flush()
    path = tmp_path / "epoch0.npy"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(TrajectoryError, match="truncated or corrupt"):
        load_epoch(tmp_path, 0, 100)


def test_missing_epoch_is_named(tmp_path):
    DCLogger(tmp_path)
    with pytest.raises(TrajectoryError, match="epoch7"):
        load_epoch(tmp_path, 7, 3)


def test_logging_does_not_copy_to_host_until_the_epoch_is_written(tmp_path, monkeypatch):
    logger = DCLogger(tmp_path)
    calls = []
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: calls.append(1) or self.to("cpu"))
    for batch in torch.arange(12).split(4):
        logger.log_metric(0, batch, torch.randn(4, 2))
    assert calls == []
    logger.flush()
    assert len(calls) == 2  # values and seen mask, once per epoch


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_are_logged(tmp_path):
    logger = DCLogger(tmp_path)
    logits = torch.randn(8, 3, device="cuda")
    logger.log_metric(0, torch.arange(8, device="cuda"), logits)
    logger.flush()
    np.testing.assert_allclose(load_epoch(tmp_path, 0, 8)[0], logits.cpu().numpy())


def test_a_logger_that_finds_another_runs_epochs_starts_clean_and_says_so(tmp_path, caplog):
    earlier = DCLogger(tmp_path, num_samples=4)
    for epoch in range(3):
        earlier.log_metric(epoch, torch.arange(4), torch.ones(4))
    earlier.flush()
    reader = DCLogger(tmp_path)  # a reader sees every epoch (a scoring run's trajectory is read this way)
    assert reader.saved_epochs() == [0, 1, 2] and reader.own_epochs() == []
    again = DCLogger(tmp_path, num_samples=4)
    with caplog.at_level("WARNING", logger="datacull"):
        again.log_metric(0, torch.arange(4), torch.zeros(4))
    assert "held epochs 0, 1, 2 of another run" in caplog.text and str(tmp_path) in caplog.text
    again.flush()
    assert again.saved_epochs() == [0] == again.own_epochs()


def test_a_live_logger_whose_folder_another_run_took_over_refuses_to_write_on(tmp_path):
    """Two live loggers on one folder: the later run starts clean; the earlier must not write into it."""
    first = DCLogger(tmp_path, num_samples=4)
    first.log_metric(0, torch.arange(4), torch.ones(4))
    first.flush()
    second = DCLogger(tmp_path, num_samples=4)
    second.log_metric(0, torch.arange(4), torch.zeros(4))
    second.flush()
    first.log_metric(1, torch.arange(4), torch.ones(4))
    with pytest.raises(
        TrajectoryError, match="another DCLogger has started a run in this folder since this one"
    ):
        first.flush()
    second.log_metric(1, torch.arange(4), torch.zeros(4))  # the run that owns the folder goes on
    second.flush()
    assert second.own_epochs() == [0, 1] and np.all(second.load_epoch(1, 4)[0] == 0)


def test_a_resumed_logger_keeps_its_checkpointed_epochs_and_drops_later_ones(tmp_path):
    first = DCLogger(tmp_path, num_samples=4)
    for epoch in range(4):
        first.log_metric(epoch, torch.arange(4), torch.full((4,), float(epoch)))
    first.flush()
    resumed = DCLogger(tmp_path, num_samples=4)
    resumed.continue_run(through_epoch=1)  # epochs 2 and 3 came after the checkpoint: trained again
    assert resumed.own_epochs() == [0, 1] and resumed.saved_epochs() == [0, 1]
    resumed.log_metric(2, torch.arange(4), torch.full((4,), 7.0))
    resumed.flush()
    assert resumed.own_epochs() == [0, 1, 2]


@pytest.mark.parametrize(
    "epoch, index, message",
    [
        (-1, torch.arange(4), "epoch must be an integer >= 0; got -1"),
        (1.5, torch.arange(4), "epoch must be an integer >= 0; got 1.5"),
        (
            0,
            torch.arange(4).float() + 0.5,
            "sample_idx must hold integer dataset indices .* got torch.float32",
        ),
        (
            0,
            torch.ones(4, dtype=torch.bool),
            "sample_idx must hold integer dataset indices .* got torch.bool",
        ),
    ],
)
def test_log_metric_refuses_indices_and_epochs_that_would_be_truncated(tmp_path, epoch, index, message):
    logger = DCLogger(tmp_path / "loss", num_samples=10)
    with pytest.raises(ValueError, match=message):
        logger.log_metric(epoch, index, torch.ones(4))
    assert not (tmp_path / "loss").exists()  # nothing written
