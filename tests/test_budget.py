"""``trainer.budget``: equal epochs, equal steps (the CCS / data-diet protocol) and a compute budget with the scoring
run included, each checked by the samples and steps a run actually trains and the schedule it follows."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from datacull.budget import Budget, plan_budget, resolve_budget, samples_in_steps, steps_per_pass
from datacull.errors import InputError
from datacull.runner import train

from .helpers import fast_config

FULL_SAMPLES = 120  # FAST: 12 digits of each class
BATCH = 32


def run(tmp_path, *overrides):
    cfg = fast_config(tmp_path, *overrides)
    summary = train(cfg, tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    metrics["lr_factor"] = metrics["lr"] / cfg.optimizer.lr
    return summary, metrics


@pytest.mark.parametrize("rate", [0.5, 0.9])
def test_equal_steps_trains_as_many_steps_as_full_data_on_a_smaller_subset(tmp_path, rate):
    summary, metrics = run(
        tmp_path, "sampler=random", f"sampler.pruning_rate={rate}", "trainer.budget=equal_steps"
    )
    full_steps = 2 * steps_per_pass(FULL_SAMPLES, BATCH)  # trainer.epochs=2 passes of full data
    assert summary["steps_trained"] == metrics["steps"].sum() == full_steps == summary["steps"]
    assert summary["budget"] == "equal_steps" and summary["compute_budget"] is None
    kept = round((1 - rate) * FULL_SAMPLES)
    assert (metrics["subset_size"] == kept).all() and len(metrics) > 2  # more passes over fewer samples
    assert summary["realized_pruning_rate"] == pytest.approx(1 - kept / FULL_SAMPLES)
    # it saves data, not compute: about as many samples as full data, measured against the 2-epoch full run
    assert summary["full_data_samples"] == 2 * FULL_SAMPLES
    assert summary["samples_trained"] == samples_in_steps(kept, BATCH, full_steps)
    assert summary["compute_saved"] == pytest.approx(1 - summary["samples_trained"] / (2 * FULL_SAMPLES))
    # the schedule spans the steps: cosine reaches its floor in the last pass, not after trainer.epochs passes
    assert metrics["lr_factor"].iloc[-1] < 0.1


@pytest.mark.parametrize("kept", [1000, 3000, 5000])
def test_equal_steps_saves_data_not_compute_when_the_subset_holds_many_batches(kept):
    # the study's sizes: 10,000 samples, batches of 128, 24 epochs; a pass splits into even batches of about 125
    steps = resolve_budget(Budget(24, kind="equal_steps"), 10_000, kept, 128, 0).steps
    assert steps == 24 * 79
    assert samples_in_steps(kept, 128, steps) / (24 * 10_000) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("compute", [0.3, 0.75])
def test_a_compute_budget_of_full_data_trains_that_share_of_its_samples(tmp_path, compute):
    summary, metrics = run(
        tmp_path,
        "sampler=full",
        "importance=uniform",
        "trainer.epochs=6",
        "trainer.budget=compute",
        f"trainer.compute={compute}",
    )
    assert summary["full_data_samples"] == 6 * FULL_SAMPLES
    spent = summary["samples_trained"] / summary["full_data_samples"]
    per_batch = FULL_SAMPLES / steps_per_pass(FULL_SAMPLES, BATCH)
    assert abs(spent - compute) <= per_batch / summary["full_data_samples"]  # within one batch
    assert summary["compute_saved"] == pytest.approx(1 - spent)
    assert summary["budget"] == "compute" and summary["compute_budget"] == compute
    assert summary["steps_trained"] == metrics["steps"].sum() == summary["steps"]
    assert metrics["test_acc"].notna().iloc[-1]
    # budget-aware decay: the last step's learning rate is near the cosine's floor, where a 6-epoch schedule stopped
    # at this share would still be at 0.5 (1 + cos(pi * compute)) of the base rate
    assert metrics["lr_factor"].iloc[-1] < 0.1


def test_a_compute_budget_charges_the_scoring_run_first(tmp_path):
    # a 3-epoch scoring run of a 2-epoch-long reference run costs 1.5 full-data runs... so score 1 epoch of 3
    summary, _ = run(
        tmp_path,
        "importance=el2n",
        "sampler=topk",
        "sampler.pruning_rate=0.5",
        "importance.trajectory_length=1",
        "trainer.budget=compute",
        "trainer.compute=0.9",
    )
    assert summary["scoring_cost_samples"] == FULL_SAMPLES  # one scoring epoch on all samples
    total = summary["samples_trained"] + summary["scoring_cost_samples"]
    assert total / summary["full_data_samples"] == pytest.approx(0.9, abs=0.05)
    assert summary["compute_saved"] == pytest.approx(0.1, abs=0.05)


def test_a_budget_the_scoring_run_alone_exceeds_is_a_one_line_error(tmp_path):
    cfg = fast_config(
        tmp_path,
        "importance=el2n",
        "sampler=topk",
        "importance.trajectory_length=2",
        "trainer.budget=compute",
        "trainer.compute=0.5",
    )
    with pytest.raises(
        InputError, match=r"trainer.compute=0.5 allows 120 samples, but the scoring run alone costs 240"
    ):
        train(cfg, tmp_path / "run")


@pytest.mark.parametrize(
    "trainer, message",
    [
        ({"budget": "epoch"}, "trainer.budget must be one of epochs, equal_steps, compute; got 'epoch'"),
        ({"budget": "compute"}, r"trainer.budget=compute needs trainer.compute in \(0, 1\]"),
        ({"budget": "compute", "compute": 1.5}, r"needs trainer.compute in \(0, 1\].*got 1.5"),
        ({"budget": "compute", "compute": 0}, r"needs trainer.compute in \(0, 1\].*got 0"),
        ({"compute": 0.5}, "trainer.compute=0.5 is read only with trainer.budget=compute"),
        ({"budget": "equal_steps", "steps": 10}, "trainer.steps=10 and trainer.budget=equal_steps both set"),
    ],
)
def test_budget_settings_that_cannot_mean_what_they_say_are_refused(trainer, message):
    settings = OmegaConf.create({"epochs": 4, "steps": None, "compute": None, **trainer})
    with pytest.raises(InputError, match=message):
        plan_budget(settings, "random", schedules_itself=False)


@pytest.mark.parametrize("budget", ["equal_steps", "compute"])
def test_a_sampler_that_schedules_itself_refuses_a_step_budget(budget):
    settings = OmegaConf.create({"epochs": 4, "steps": None, "budget": budget, "compute": 0.5})
    if budget != "compute":
        settings.compute = None
    with pytest.raises(InputError, match=f"sampler=infobatch schedules itself.*drop trainer.budget={budget}"):
        plan_budget(settings, "infobatch", schedules_itself=True)


@given(
    num_samples=st.integers(1, 5000),
    kept_share=st.floats(0.01, 1.0),
    batch=st.integers(1, 512),
    epochs=st.integers(1, 50),
    compute=st.floats(0.01, 1.0),
    scoring_share=st.floats(0.0, 0.9),
)
def test_a_resolved_compute_budget_spends_the_share_it_was_given_within_one_batch(
    num_samples, kept_share, batch, epochs, compute, scoring_share
):
    subset = max(1, math.floor(kept_share * num_samples))
    full = epochs * num_samples
    scoring = math.floor(scoring_share * compute * full)
    if compute * full - scoring < 1:
        with pytest.raises(InputError):
            resolve_budget(
                Budget(epochs, kind="compute", compute=compute), num_samples, subset, batch, scoring
            )
        return
    budget = resolve_budget(
        Budget(epochs, kind="compute", compute=compute), num_samples, subset, batch, scoring
    )
    trained = samples_in_steps(subset, batch, budget.steps)
    largest_batch = -(-subset // steps_per_pass(subset, batch))
    assert abs(trained + scoring - compute * full) <= largest_batch
    assert budget.full_data_samples(num_samples, batch) == full


@given(num_samples=st.integers(1, 5000), batch=st.integers(1, 512), steps=st.integers(0, 2000))
def test_samples_in_steps_counts_the_batches_the_engine_makes(num_samples, batch, steps):
    import torch

    per_pass = steps_per_pass(num_samples, batch)
    sizes = [part.numel() for part in torch.tensor_split(torch.arange(num_samples), per_pass)]
    passes, extra = divmod(steps, per_pass)
    assert samples_in_steps(num_samples, batch, steps) == passes * num_samples + sum(sizes[:extra])
