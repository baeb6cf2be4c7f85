"""Protocols as the papers run them: the scoring run is the beginning of a full-length run, budgets in steps,
a validation split only where something reads it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from datacull import scoring_run
from datacull.distributed import DistContext
from datacull.errors import InputError
from datacull.parts import Budget, load_dataset
from datacull.runner import train

from .helpers import compose_config, fast_config, scoring_request


def scoring_logits(run: scoring_run.ScoringRun, epoch: int) -> np.ndarray:
    return np.load(run.directory / "logits" / f"epoch{epoch}.npy")


@pytest.fixture
def digits(tmp_path):
    cfg = compose_config(["dataset.subset_per_class=10", "model.hidden=16", "model.depth=1"], tmp_path)
    return cfg, load_dataset(cfg.dataset, tmp_path / "cache")


def test_a_short_scoring_run_is_the_first_epochs_of_the_full_length_run(tmp_path, digits):
    cfg, data = digits
    prefix = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 2, 6, tmp_path / "a"))
    full = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 6, 6, tmp_path / "b"))
    for epoch in (0, 1):
        np.testing.assert_array_equal(scoring_logits(prefix, epoch), scoring_logits(full, epoch))
    # the old protocol, a schedule that ends at the last epoch read, trains differently from epoch 1 on
    short = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 2, 2, tmp_path / "c"))
    np.testing.assert_array_equal(scoring_logits(short, 0), scoring_logits(full, 0))
    assert not np.array_equal(scoring_logits(short, 1), scoring_logits(full, 1))
    assert sorted(path.name for path in (tmp_path / "a" / "scoring").iterdir() if path.is_dir()) == [
        prefix.directory.name
    ]


def test_an_entry_is_extended_in_place_and_equals_one_trained_at_once(tmp_path, digits):
    cfg, data = digits
    samples = data.train_y.numel()
    first = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 2, 5, tmp_path / "cache"))
    longer = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 4, 5, tmp_path / "cache"))
    assert longer.directory == first.directory and not longer.cache_hit
    assert (first.trained_samples, longer.trained_samples) == (2 * samples, 2 * samples)
    assert longer.cost_samples == 4 * samples  # a run reading 4 epochs is charged for 4, cached or not
    again = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 3, 5, tmp_path / "cache"))
    assert again.cache_hit and again.trained_samples == 0 and again.cost_samples == 3 * samples
    at_once = scoring_run.obtain_scoring_run(scoring_request(cfg, data, 4, 5, tmp_path / "other"))
    for epoch in range(4):
        np.testing.assert_array_equal(scoring_logits(longer, epoch), scoring_logits(at_once, epoch))
    meta = json.loads((longer.directory / "meta.json").read_text())
    assert meta["epochs_trained"] == 4 and "logits/epoch3.npy" in meta["files"]


def test_the_cache_key_covers_the_schedule_length_but_not_the_epochs_read(digits):
    cfg, data = digits
    ten = scoring_request(cfg, data, 5, 10, "cache")
    assert ten.key == scoring_request(cfg, data, 10, 10, "cache").key  # the epochs read are not in the key
    assert ten.key != scoring_request(cfg, data, 5, 20, "cache").key
    assert ten.key != dataclasses.replace(ten, context=DistContext(0, 2, 0)).key
    assert ten.key != dataclasses.replace(ten, seed=1).key


def test_the_runner_reads_a_static_score_from_the_start_of_a_trainer_length_run(tmp_path):
    cfg = fast_config(
        tmp_path, "importance=aum", "sampler=ccs", "trainer.epochs=4", "scoring.epochs=${trainer.epochs}"
    )
    cfg.importance.trajectory_length = None  # AUM's default: the whole scoring run
    summary = train(cfg, tmp_path / "run")
    assert summary["scoring_schedule_epochs"] == 4 and summary["scoring_epochs"] == 4
    assert summary["scoring_cost_samples"] == 4 * summary["num_train_samples"]
    assert summary["compute_saved"] == pytest.approx(
        1 - (summary["samples_trained"] + summary["scoring_cost_samples"]) / summary["full_data_samples"]
    )


@pytest.mark.parametrize("sampler, rate", [("random", 0.5), ("full", 0.0), ("rs2", 0.7)])
def test_a_step_budget_trains_exactly_that_many_steps(tmp_path, sampler, rate):
    cfg = fast_config(tmp_path, f"sampler={sampler}", f"sampler.pruning_rate={rate}", "trainer.steps=7")
    summary = train(cfg, tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert summary["steps_trained"] == metrics["steps"].sum() == 7 and summary["steps"] == 7
    assert summary["samples_trained"] == metrics["samples_trained"].sum()
    # the last pass ends early; subset_size is the subset it walked, so the realized rate is the sampler's
    assert (metrics["samples_trained"] <= metrics["subset_size"]).all()
    assert summary["realized_pruning_rate"] == pytest.approx(rate, abs=0.01)
    assert summary["epochs_trained"] == len(metrics) and metrics["test_acc"].notna().iloc[-1]
    samples = summary["num_train_samples"]
    assert summary["full_data_samples"] == Budget(2, 7).full_data_samples(samples, 32)
    if sampler == "full":  # the reference trains exactly the full-data budget: nothing saved
        assert summary["samples_trained"] == summary["full_data_samples"] and summary["compute_saved"] == 0
    else:  # a smaller subset takes more epochs to spend the same steps
        assert len(metrics) > 7 // -(-samples // 32)


def test_full_data_budget_counts_the_batches_the_loop_makes():
    # 10 samples in batches of 4: epochs split 10 into [4, 3, 3]
    assert Budget(3).full_data_samples(10, 4) == 30
    assert [Budget(3, steps).full_data_samples(10, 4) for steps in (1, 2, 3, 4, 5)] == [4, 7, 10, 14, 17]


def test_a_step_budget_learning_rate_follows_steps(tmp_path):
    cfg = fast_config(tmp_path, "sampler=random", "sampler.pruning_rate=0.5", "trainer.steps=8")
    train(cfg, tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    done_before_last_step = metrics["steps"].cumsum() - 1
    cosine = 0.5 * (1 + np.cos(np.pi * done_before_last_step / 8))
    np.testing.assert_allclose(metrics["lr"], cfg.optimizer.lr * cosine)


def test_infobatch_refuses_a_step_budget(tmp_path):
    with pytest.raises(InputError, match="sampler=infobatch schedules itself over trainer.epochs"):
        train(fast_config(tmp_path, "sampler=infobatch", "trainer.steps=5"), tmp_path / "run")


def test_metriq_holds_out_a_validation_split_of_its_query_run_only(tmp_path, caplog):
    cfg = fast_config(tmp_path, "sampler=metriq", "trainer.epochs=3", "sampler.query_epochs=2")
    with caplog.at_level("INFO", logger="datacull"):
        summary = train(cfg, tmp_path / "run")
    samples = summary["num_train_samples"]
    assert samples == 120  # the model being pruned draws from every training sample
    held_out = 10  # round(0.1 * 12) of each of 10 classes
    assert summary["scoring_cost_samples"] == 2 * (samples - held_out) and summary["scoring_epochs"] == 2
    assert len(summary["class_wise_acc"]) == 10
    assert "held out of the query run" in caplog.text


def test_the_query_run_reads_class_accuracies_at_its_best_validation_epoch():
    run = scoring_run.ScoringRun(
        directory=None,
        epochs=3,
        schedule_epochs=10,
        cost_samples=0,
        trained_samples=0,
        wall_time_s=0.0,
        cost_s=0.0,
        cache_hit=True,
        model="mlp",
        cost_ratio=1.0,
        validation=[
            {"accuracy": 0.5, "per_class": [0.4, 0.6]},
            {"accuracy": 0.7, "per_class": [0.9, 0.5]},
            {"accuracy": 0.6, "per_class": [0.6, 0.6]},
        ],
    )
    assert run.best_validation_class_accuracy() == [0.9, 0.5]


def test_runs_without_metriq_train_on_every_sample_and_refuse_an_unread_split(tmp_path):
    summary = train(fast_config(tmp_path, "sampler=random"), tmp_path / "run")
    assert summary["num_train_samples"] == 120
    with pytest.raises(InputError, match="nothing reads a validation split"):
        train(fast_config(tmp_path, "sampler=random", "dataset.val_fraction=0.1"), tmp_path / "other")


@pytest.mark.slow
def test_a_long_rcap_run_keeps_training_every_class(tmp_path):
    """The failure this guards against: 400 epochs of the default RCAP run on digits once trained class 0 154
    times against about 28,700 for every other class (its test accuracy fell to 0)."""
    summary = train(
        compose_config(["trainer.epochs=400", "trainer.eval_every=400"], tmp_path), tmp_path / "run"
    )
    samples = pd.read_csv(tmp_path / "run" / "samples.csv")
    per_class = samples.groupby("label")["times_selected"].sum()
    proportional = summary["samples_trained"] * samples.groupby("label").size() / len(samples)
    assert (per_class >= 0.5 * proportional).all(), per_class.tolist()
    assert min(summary["per_class_acc"]) > 0.8
