"""``datacull report`` against the frontier: Δ vs full data trained for less at the same compute (interpolated,
paired by seed), time to accuracy, 95% t-intervals, budgets kept apart, and damaged runs set aside. Checked by hand
on made-up summaries."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t

from datacull.report import collect, failed_runs, markdown, summarize, time_to_accuracy

from .helpers import row, write_run

T95 = {n: t.ppf(0.975, n - 1) for n in (2, 3)}


def full(root, seed, acc, compute=1.0, **fields):
    """A full-data run: the reference (compute 1) or, with ``compute`` < 1, a frontier point."""
    budget = {} if compute == 1.0 else {"budget": "compute", "compute_budget": compute}
    name = f"full_{compute}_s{seed}"
    return write_run(
        root,
        name,
        sampler="full",
        importance="uniform",
        pruning_rate=0.0,
        seed=seed,
        test_acc=acc,
        compute_saved=1 - compute,
        realized_pruning_rate=0.0,
        **budget,
        **fields,
    )


def method(root, name, seed, acc, compute, sampler="random", rate=0.6, **fields):
    return write_run(
        root,
        f"{name}_s{seed}",
        sampler=sampler,
        importance="uniform" if sampler in ("random", "rs2") else "aum",
        pruning_rate=rate,
        realized_pruning_rate=rate,
        seed=seed,
        test_acc=acc,
        compute_saved=1 - compute,
        **fields,
    )


@pytest.fixture
def frontier(tmp_path):
    """Full data at 1.0 (seeds 0-2), the frontier at 0.3 and 0.5 (seeds 0, 1 only)."""
    root = tmp_path / "study"
    for seed, acc in enumerate((0.80, 0.82, 0.84)):
        full(root, seed, acc)
    for seed, (low, mid) in enumerate(((0.70, 0.76), (0.72, 0.80))):
        full(root, seed, low, compute=0.3)
        full(root, seed, mid, compute=0.5)
    return root


def test_delta_vs_frontier_interpolates_the_seeds_own_frontier_and_falls_back_to_its_mean(frontier):
    accuracies = (0.75, 0.77, 0.80)
    for seed, acc in enumerate(accuracies):
        method(frontier, "random", seed, acc, compute=0.4)
    table = summarize(collect([frontier]))
    random = row(table, sampler="random")
    own = [0.75 - (0.70 + 0.76) / 2, 0.77 - (0.72 + 0.80) / 2]  # seeds 0, 1: midway between 0.3 and 0.5
    means = [
        (0.71 + 0.78) / 2
    ]  # seed 2 has no frontier run: the frontier of the means (0.3: 0.71, 0.5: 0.78)
    deltas = own + [0.80 - means[0]]
    assert random["delta_frontier_test_acc"] == pytest.approx(np.mean(deltas))
    assert random["delta_frontier_test_acc_n"] == 3 and random["frontier_paired_seeds"] == 2
    assert random["delta_frontier_test_acc_ci95"] == pytest.approx(
        T95[3] * np.std(deltas, ddof=1) / math.sqrt(3)
    )
    # the frontier's own rows and the reference are what it is compared with: no Δ vs frontier of their own
    assert table.loc[table["frontier"] | table["reference"], "delta_frontier_test_acc"].isna().all()
    assert row(table, budget="compute=0.3")["frontier"] and not row(table, budget="compute=0.3")["reference"]


def test_between_the_frontier_and_full_data_the_reference_is_the_frontiers_last_point(frontier):
    method(frontier, "random", 0, 0.79, compute=0.75)  # between 0.5 (0.76) and 1.0 (0.80) of seed 0
    random = row(summarize(collect([frontier])), sampler="random")
    assert random["delta_frontier_test_acc"] == pytest.approx(0.79 - (0.76 + 0.80) / 2)


def test_outside_the_measured_frontier_the_delta_is_blank_with_a_footnote(frontier):
    method(frontier, "ccs", 0, 0.81, compute=1.3, sampler="ccs")  # a scoring run dearer than full data
    method(frontier, "random", 0, 0.60, compute=0.1, rate=0.9)  # below the cheapest frontier point
    table = summarize(collect([frontier]))
    assert table.loc[~table["frontier"] & ~table["reference"], "delta_frontier_test_acc"].isna().all()
    text = markdown(table, failed_runs(collect([frontier])))
    assert "³ blank: the run's compute lies outside the frontier's measured range" in text


def test_deltas_show_the_paired_mean_with_its_t_interval_and_n(frontier):
    for seed, (random_acc, rs2_acc) in enumerate(((0.70, 0.72), (0.74, 0.75), (0.71, 0.745))):
        method(frontier, "random", seed, random_acc, compute=0.4)
        method(frontier, "rs2", seed, rs2_acc, compute=0.4, sampler="rs2")
    table = summarize(collect([frontier]))
    rs2 = row(table, sampler="rs2")
    differences = [0.02, 0.01, 0.035]
    assert rs2["delta_random_test_acc"] == pytest.approx(np.mean(differences))
    half = T95[3] * np.std(differences, ddof=1) / math.sqrt(3)
    assert rs2["delta_random_test_acc_ci95"] == pytest.approx(half)
    assert rs2["delta_random_test_acc_std"] == pytest.approx(
        np.std(differences, ddof=1)
    )  # report.csv keeps it
    text = markdown(table, failed_runs(collect([frontier])))
    assert f"+{np.mean(differences):.4f} ± {half:.4f} (n=3)" in text


def test_one_seed_shows_no_interval(frontier):
    method(frontier, "random", 0, 0.75, compute=0.4)
    table = summarize(collect([frontier]))
    random = row(table, sampler="random")
    assert random["delta_test_acc_n"] == 1 and math.isnan(random["delta_test_acc_ci95"])
    assert f"{random['delta_test_acc']:+.4f} (n=1)" in markdown(table, failed_runs(collect([frontier])))


def test_time_to_accuracy_finds_the_least_compute_within_each_margin(frontier):
    # the reference's mean is 0.82; the frontier's means: 0.3 -> 0.71, 0.5 -> 0.78, 1.0 -> 0.82
    for rate, compute, acc in ((0.7, 0.3, 0.805), (0.5, 0.5, 0.8155), (0.3, 0.7, 0.83)):
        method(frontier, f"good_{rate}", 0, acc, compute=compute, sampler="rs2", rate=rate)
    method(frontier, "poor", 0, 0.60, compute=0.4, sampler="ccs")
    reached = time_to_accuracy(summarize(collect([frontier]))).set_index("method")
    good, poor, edge = (
        reached.loc["rs2"],
        reached.loc["aum/ccs"],
        reached.loc["full data trained for less (frontier)"],
    )
    assert good["within_0.5_compute"] == pytest.approx(0.5) and good["within_0.5_at"] == "p=0.5"
    assert good["within_1_compute"] == pytest.approx(0.5)  # 0.805 is 1.5 points short
    assert good["best_delta"] == pytest.approx(0.01)
    assert math.isnan(poor["within_1_compute"]) and poor["within_1_at"] == ""
    assert edge["within_0.5_compute"] == pytest.approx(1.0) and edge["within_0.5_at"] == "full data"


def test_budgets_are_compared_within_their_own_kind(tmp_path):
    root = tmp_path / "study"
    for seed in (0, 1):
        full(root, seed, 0.8)
        method(root, "random_epochs", seed, 0.70, compute=0.3, rate=0.7)
        method(root, "random_steps", seed, 0.76, compute=0.98, rate=0.7, budget="equal_steps")
        method(root, "ccs_steps", seed, 0.78, compute=1.5, sampler="ccs", rate=0.7, budget="equal_steps")
    table = summarize(collect([root]))
    ccs = row(table, sampler="ccs")
    assert ccs["budget"] == "equal_steps"
    assert ccs["delta_random_test_acc"] == pytest.approx(0.02)  # against random at equal steps, not at epochs
    assert ccs["delta_test_acc"] == pytest.approx(-0.02)  # and against the one full-data reference


def test_damaged_runs_are_listed_with_their_reason_and_change_nothing(frontier):
    for seed, acc in enumerate((0.70, 0.74, 0.72)):
        method(frontier, "random", seed, acc, compute=0.4)
    before = summarize(collect([frontier]))
    method(frontier, "text_rate", 5, 0.99, compute=0.4, rate=0.6)
    summary_path = frontier / "text_rate_s5" / "summary.json"
    summary_path.write_text(summary_path.read_text().replace('"pruning_rate": 0.6', '"pruning_rate": "abc"'))
    method(frontier, "nan_acc", 6, float("nan"), compute=0.4)
    (method(frontier, "no_config", 7, 0.99, compute=0.4) / "config.yaml").unlink()
    (method(frontier, "bad_config", 8, 0.99, compute=0.4) / "config.yaml").write_bytes(b"\xff\xfe: [")
    copied = frontier / "elsewhere" / "random_s0"
    shutil.copytree(frontier / "random_s0", copied)  # a copy keeps the run_dir of the original in its summary
    summary = json.loads((copied / "summary.json").read_text())
    (copied / "summary.json").write_text(json.dumps({**summary, "run_dir": str(frontier / "random_s0")}))

    runs = collect([frontier])
    after = summarize(runs)
    left_out = failed_runs(runs).set_index("run_dir")
    reasons = {name: left_out.loc[str(frontier / name), "error"] for name in ("text_rate_s5", "nan_acc_s6")}
    assert "pruning_rate='abc', not a finite number" in reasons["text_rate_s5"]
    assert "test_acc=nan, not a finite number" in reasons["nan_acc_s6"]
    assert "config.yaml is missing" in left_out.loc[str(frontier / "no_config_s7"), "error"]
    assert "config.yaml cannot be read" in left_out.loc[str(frontier / "bad_config_s8"), "error"]
    # the copy is a repeat of the run, reported under its own path, never "X is a duplicate of X"
    pair = {str(frontier / "random_s0"), str(copied)}
    (repeat,) = pair & set(left_out.index)
    assert left_out.loc[repeat, "status"] == "duplicate"
    assert (pair - {repeat}).pop() in left_out.loc[repeat, "error"] and repeat not in left_out.loc[
        repeat, "error"
    ]
    pd.testing.assert_frame_equal(
        after[before.columns].reset_index(drop=True), before.reset_index(drop=True), check_dtype=False
    )
    assert markdown(after, failed_runs(runs))  # the report completes


def test_settings_show_only_what_differs_within_a_comparison(tmp_path):
    for dataset, root in (("digits", "/a"), ("imagefolder", "/b")):
        for lr in (0.1, 0.05):
            config = {"dataset": {"root": root, "image_size": [8, 8] if dataset == "digits" else None}}
            config["optimizer"] = {"lr": lr}
            write_run(tmp_path, f"{dataset}_{lr}", config=config, dataset=dataset, sampler="random")
    table = summarize(collect([tmp_path]))
    assert sorted(table["settings"]) == [
        "optimizer.lr=0.05",
        "optimizer.lr=0.05",
        "optimizer.lr=0.1",
        "optimizer.lr=0.1",
    ]


def test_a_compute_a_whole_step_short_of_the_frontiers_cheapest_point_reads_that_point(frontier):
    full(frontier, 0, 0.50, compute=0.1002)  # a frontier run rounds its budget to whole steps
    full(frontier, 1, 0.52, compute=0.1002)
    method(frontier, "random", 0, 0.48, compute=0.1, rate=0.9)
    method(frontier, "random", 1, 0.47, compute=0.0985, rate=0.9)  # 1.7% short: outside
    table = summarize(collect([frontier]))
    random = row(table, sampler="random")
    assert (
        random["delta_frontier_test_acc"] == pytest.approx(0.48 - 0.50)
        and random["delta_frontier_test_acc_n"] == 1
    )


def test_time_to_accuracy_shows_the_context_when_only_some_comparisons_have_one(tmp_path):
    for lr in (0.1, 0.05):  # dataset alpha: an lr sweep, so its rows carry a context
        for sampler, rate in (("full", 0.0), ("random", 0.5)):
            config = {"optimizer": {"lr": lr}}
            write_run(
                tmp_path,
                f"alpha_{sampler}_{lr}",
                config=config,
                dataset="alpha",
                sampler=sampler,
                pruning_rate=rate,
            )
    write_run(tmp_path, "beta_full", dataset="beta", sampler="full", pruning_rate=0.0)
    write_run(tmp_path, "beta_random", dataset="beta", sampler="random")
    runs = collect([tmp_path])
    text = markdown(summarize(runs), failed_runs(runs))
    assert "| context" in text.split("Time to accuracy")[1]


def test_a_report_of_the_frontier_alone_completes_without_a_curves_picture(frontier, tmp_path):
    from datacull.report import report

    _, _, notes = report([frontier], tmp_path / "out")
    assert (tmp_path / "out" / "report.md").exists() and not (tmp_path / "out" / "report_curves.png").exists()
    assert any("report.png" in note for note in notes)


def test_a_shortened_run_at_rate_zero_is_never_the_reference(tmp_path):
    write_run(
        tmp_path,
        "short",
        sampler="random",
        pruning_rate=0.0,
        test_acc=0.5,
        budget="compute",
        compute_budget=0.3,
    )
    write_run(tmp_path, "whole", sampler="random", pruning_rate=0.0, test_acc=0.8)
    write_run(tmp_path, "method", sampler="random", pruning_rate=0.5, test_acc=0.7)
    table = summarize(collect([tmp_path]))
    assert row(table, pruning_rate=0.5, budget="epochs")["delta_test_acc"] == pytest.approx(-0.1)
    assert not row(table, budget="compute=0.3")["reference"]
