"""Epoch observers: ``trainer.tensorboard=true`` writes exactly metrics.csv's values, also across a resume."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from datacull.errors import InputError
from datacull.observers import SCALARS
from datacull.outputs import RunFolder
from datacull.runner import train

from .helpers import fast_config

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def expected(run_dir) -> dict[str, list[tuple[int, float]]]:
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return {
        name: [
            (int(row.epoch), getattr(row, name))
            for row in metrics.itertuples()
            if pd.notna(getattr(row, name))
        ]
        for name in SCALARS
    }


def assert_same(run_dir) -> None:
    written, wanted = scalars(run_dir), expected(run_dir)
    assert set(written) == set(SCALARS)
    for name in SCALARS:
        assert [step for step, _ in written[name]] == [step for step, _ in wanted[name]], name
        assert [value for _, value in written[name]] == pytest.approx([v for _, v in wanted[name]], rel=1e-6)


def test_tensorboard_scalars_equal_metrics_csv(tmp_path):
    run = tmp_path / "run"
    train(fast_config(tmp_path, "trainer.tensorboard=true", "trainer.epochs=3", "trainer.eval_every=2"), run)
    assert_same(run)
    assert [step for step, _ in scalars(run)["test_acc"]] == [2, 3]  # evaluated epochs only (1-based)


def test_resumed_run_appends_without_duplicate_epochs(tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = fast_config(tmp_path, "trainer.tensorboard=true", "trainer.epochs=3")
    save = RunFolder.save_checkpoint
    calls = []

    def crash_on_second_save(self, state):
        calls.append(state["epoch"])
        if len(calls) == 2:  # epoch 1 is in metrics.csv and TensorBoard, but not in the checkpoint
            raise KeyboardInterrupt
        save(self, state)

    monkeypatch.setattr(RunFolder, "save_checkpoint", crash_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run)
    assert [step for step, _ in scalars(run)["train_loss"]] == [1, 2]
    monkeypatch.setattr(RunFolder, "save_checkpoint", save)
    train(cfg, run, resume=True)
    assert_same(run)


def test_missing_tensorboard_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(InputError, match=r"pip install tensorboard"):
        train(fast_config(tmp_path, "trainer.tensorboard=true"), tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.csv").exists()
    assert not (tmp_path / "run" / "tensorboard").exists()
