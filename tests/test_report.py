"""``datacull report``: aggregation checked by hand on written summaries, then end to end on real runs."""

from __future__ import annotations

import io
import json
import statistics
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from datacull.cli import app
from datacull.errors import InputError
from datacull.report import collect, failed_runs, markdown, report, summarize, write_report
from datacull.runner import train

from .helpers import FAST, datacull, fast_config, row, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def study(tmp_path):
    """Full reference with seeds 0, 1; random at 0.5 with seeds 0, 1, 2; and one run of each kind left out."""
    root = tmp_path / "study"
    for seed, acc, worst in ((0, 0.90, 0.70), (1, 0.80, 0.60)):
        write_run(
            root,
            f"full_s{seed}",
            sampler="full",
            pruning_rate=0.0,
            seed=seed,
            test_acc=acc,
            worst_class_acc=worst,
            compute_saved=0.0,
        )
    for seed, acc, saved in ((0, 0.85, 0.50), (1, 0.70, 0.40), (2, 0.76, 0.45)):
        write_run(
            root,
            f"random_s{seed}",
            sampler="random",
            seed=seed,
            test_acc=acc,
            worst_class_acc=0.5,
            compute_saved=saved,
        )
    write_run(
        root,
        "diverged",
        status="failed",
        sampler="random",
        seed=3,
        test_acc=None,
        error="DivergenceError: training loss became nan in epoch 2",
    )
    write_run(root, "killed", status="running", sampler="random", seed=4, test_acc=None)
    write_run(root, "truncated", best_test_acc=None, sampler="random", seed=None)
    (root / "corrupt").mkdir()
    (root / "corrupt" / "summary.json").write_text('{"status": "compl')
    return root


def test_mean_std_and_seed_paired_delta_by_hand(study):
    table, failed, notes = report([study], study)
    assert len(table) == 2  # full and random; the four runs left out are not averaged in
    random = row(table, sampler="random")
    assert random["importance"] == "-"  # random ignores the score: whatever importance the config named
    assert random["runs"] == 3 and random["seeds"] == "0,1,2"
    assert random["test_acc_mean"] == pytest.approx(0.77)
    assert random["test_acc_std"] == pytest.approx((0.0114 / 2) ** 0.5)  # deviations .08, -.07, -.01; n - 1
    # seeds 0 and 1 paired with the reference's own seeds (-0.05, -0.10), seed 2 with its mean 0.85 (-0.09)
    assert random["delta_test_acc"] == pytest.approx(-0.08) and random["paired_seeds"] == 2
    assert random["delta_worst_class_acc"] == pytest.approx(((0.5 - 0.7) + (0.5 - 0.6) + (0.5 - 0.65)) / 3)
    assert random["compute_saved_mean"] == pytest.approx(0.45)
    full = row(table, sampler="full")
    assert full["reference"] and full["delta_test_acc"] == pytest.approx(0.0)
    assert full["test_acc_std"] == pytest.approx(statistics.stdev([0.9, 0.8]))

    written = pd.read_csv(study / "report.csv")
    assert written.loc[written["sampler"] == "random", "test_acc_mean"].item() == pytest.approx(0.77)
    left_out = pd.read_csv(study / "report_failed.csv").set_index("run_dir")["status"]
    assert {name.rsplit("/", 1)[-1]: status for name, status in left_out.items()} == {
        "corrupt": "unreadable",
        "diverged": "failed",
        "killed": "running",
        "truncated": "incomplete",
    }
    text = (study / "report.md").read_text()
    assert "0.7700 ± 0.0755" in text and "-0.0800" in text
    assert (
        "training loss became nan" in text
        and "lacks seed, best_test_acc" in text
        and "datacull resume" in text
    )
    assert (study / "report.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(notes) == 2


def test_runs_that_differ_in_a_setting_or_in_epochs_are_not_averaged(tmp_path):
    base = {"optimizer": {"lr": 0.1}, "sampler": {"beta": 0.1}, "output_dir": "/a", "trainer": {"epochs": 2}}
    other_lr = {**base, "optimizer": {"lr": 0.01}, "output_dir": "/b"}
    write_run(tmp_path, "full", config=base, sampler="full", pruning_rate=0.0, test_acc=0.9)
    write_run(tmp_path, "lr01", config=base, sampler="ccs", test_acc=0.8)
    write_run(tmp_path, "lr001", config=other_lr, sampler="ccs", test_acc=0.6)
    write_run(tmp_path, "beta", config={**base, "sampler": {"beta": 0.3}}, sampler="ccs", test_acc=0.7)
    write_run(tmp_path, "longer", config=base, sampler="ccs", epochs=4, test_acc=0.95)
    table = summarize(collect([tmp_path]))
    assert sorted(table["settings"]) == sorted(
        [
            "optimizer.lr=0.1",
            "optimizer.lr=0.1 sampler.beta=0.1",
            "optimizer.lr=0.1 sampler.beta=0.1",
            "optimizer.lr=0.1 sampler.beta=0.3",
            "optimizer.lr=0.01 sampler.beta=0.1",
        ]
    )
    assert row(table, settings="optimizer.lr=0.1 sampler.beta=0.1", epochs=2)[
        "delta_test_acc"
    ] == pytest.approx(-0.1)
    assert row(table, settings="optimizer.lr=0.1 sampler.beta=0.3")["delta_test_acc"] == pytest.approx(-0.2)
    assert pd.isna(
        row(table, settings="optimizer.lr=0.01 sampler.beta=0.1")["delta_test_acc"]
    )  # no reference at that lr
    assert pd.isna(row(table, epochs=4)["delta_test_acc"])  # nor at 4 epochs


def test_without_matplotlib_the_plot_is_skipped_in_one_line(study, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    runs = collect([study])
    notes = write_report(summarize(runs), failed_runs(runs), tmp_path / "out")
    assert notes[-1].startswith("report.png skipped: matplotlib is not installed")
    assert (tmp_path / "out" / "report.csv").exists() and not (tmp_path / "out" / "report.png").exists()


def test_csv_to_stdout_and_out_folder(study, tmp_path):
    result = CliRunner().invoke(
        app, ["report", str(study), "--format", "csv", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0
    printed = pd.read_csv(io.StringIO(result.stdout))
    assert printed.equals(pd.read_csv(tmp_path / "out" / "report.csv")) and len(printed) == 2
    assert "4 run(s) failed, unfinished or unreadable: see report_failed.csv" in result.stderr
    assert not (study / "report.csv").exists()
    result = CliRunner().invoke(app, ["report", str(study), "--format", "html"])
    assert result.exit_code == 2 and result.stderr == "error: --format must be markdown or csv; got 'html'\n"


def test_nothing_to_report_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no summary.json found below"):
        collect([tmp_path])
    result = datacull("report", str(tmp_path), cwd=tmp_path, check=False)
    assert (
        result.returncode == 2 and result.stderr.strip() == f"error: no summary.json found below {tmp_path}"
    )
    result = datacull("report", str(tmp_path / "missing"), cwd=tmp_path, check=False)
    assert result.returncode == 2 and result.stderr.strip() == f"error: {tmp_path / 'missing'} does not exist"


@pytest.mark.slow
def test_report_on_real_runs_of_a_sweep_and_a_failed_run(tmp_path):
    sweep = [
        "sampler=random,full",
        "sampler.pruning_rate=0.5",
        "seed=0,1",
    ]  # full ignores the rate it is given
    datacull("train", "-m", *sweep, *FAST, cwd=tmp_path)
    with pytest.raises(InputError):
        train(fast_config(tmp_path, "sampler=ccs", "sampler.beta=0.6"), tmp_path / "outputs" / "runs" / "bad")

    result = datacull("report", "outputs", cwd=tmp_path)
    summaries = [json.loads(path.read_text()) for path in (tmp_path / "outputs").rglob("summary.json")]
    accuracy = {
        sampler: {s["seed"]: s["test_acc"] for s in summaries if s["sampler"] == sampler}
        for sampler in ("random", "full")
    }
    table = pd.read_csv(tmp_path / "outputs" / "report.csv").set_index("sampler")
    assert sorted(table.index) == ["full", "random"] and table.loc["full", "pruning_rate"] == 0
    for sampler, by_seed in accuracy.items():
        assert sorted(by_seed) == [0, 1]
        assert table.loc[sampler, "test_acc_mean"] == pytest.approx(statistics.mean(by_seed.values()))
        assert table.loc[sampler, "test_acc_std"] == pytest.approx(statistics.stdev(by_seed.values()))
    delta = statistics.mean(accuracy["random"][seed] - accuracy["full"][seed] for seed in (0, 1))
    assert table.loc["random", "delta_test_acc"] == pytest.approx(delta)
    (failed,) = pd.read_csv(tmp_path / "outputs" / "report_failed.csv").itertuples()
    assert failed.status == "failed" and "CCS needs" in failed.error
    assert "| random" in result.stdout and "CCS needs" in result.stdout
    assert (tmp_path / "outputs" / "report.png").read_bytes().startswith(PNG_SIGNATURE)


def test_delta_against_static_random_at_the_same_rate_by_hand(tmp_path):
    for seed, acc in ((0, 0.60), (1, 0.70)):
        write_run(
            tmp_path,
            f"random_{seed}",
            sampler="random",
            pruning_rate=0.9,
            realized_pruning_rate=0.9,
            seed=seed,
            test_acc=acc,
        )
    for seed, acc in ((0, 0.66), (1, 0.71), (2, 0.62)):
        write_run(
            tmp_path,
            f"ccs_{seed}",
            importance="aum",
            sampler="ccs",
            pruning_rate=0.9,
            realized_pruning_rate=0.9,
            seed=seed,
            test_acc=acc,
        )
    write_run(tmp_path, "ccs_other_rate", importance="aum", sampler="ccs", pruning_rate=0.5, test_acc=0.8)
    # InfoBatch configured at 0.9 but realizing 0.3 is not compared with random at 0.9
    write_run(
        tmp_path,
        "infobatch",
        importance="loss",
        sampler="infobatch",
        pruning_rate=0.9,
        realized_pruning_rate=0.3,
    )
    table = summarize(collect([tmp_path]))
    ccs = row(table, sampler="ccs", pruning_rate=0.9)
    # seeds 0 and 1 against random's own seeds (+.06, +.01), seed 2 against random's mean .65 (-.03)
    assert ccs["delta_random_test_acc"] == pytest.approx((0.06 + 0.01 - 0.03) / 3)
    assert row(table, sampler="random")["delta_random_test_acc"] == pytest.approx(0.0)
    assert pd.isna(row(table, sampler="ccs", pruning_rate=0.5)["delta_random_test_acc"])
    assert pd.isna(row(table, sampler="infobatch")["delta_random_test_acc"])
    assert ccs["compute_mean"] == pytest.approx(0.5)  # 1 - compute_saved
    text = markdown(table, failed_runs(collect([tmp_path])))
    assert "² blank: no static random run" in text and "¹ blank: no full-data reference" in text


def test_a_rerun_with_the_same_settings_and_seed_is_not_averaged_twice(tmp_path):
    write_run(
        tmp_path, "first", sampler="random", seed=0, test_acc=0.5, finished_at="2026-01-01T10:00:00+00:00"
    )
    write_run(
        tmp_path, "again", sampler="random", seed=0, test_acc=0.7, finished_at="2026-01-02T10:00:00+00:00"
    )
    write_run(
        tmp_path,
        "other_seed",
        sampler="random",
        seed=1,
        test_acc=0.6,
        finished_at="2026-01-01T09:00:00+00:00",
    )
    runs = collect([tmp_path])
    random = row(summarize(runs), sampler="random")
    assert random["runs"] == 2 and random["test_acc_mean"] == pytest.approx(0.65)
    (duplicate,) = failed_runs(runs).itertuples()
    assert duplicate.status == "duplicate" and duplicate.run_dir.endswith("first")
    assert "same settings and seed as" in duplicate.error and duplicate.error.count("again") == 1


def test_report_without_a_path_reads_the_output_folder(tmp_path, monkeypatch):
    write_run(tmp_path / "outputs" / "runs", "one", sampler="random")
    monkeypatch.setenv("DATACULL_OUTPUT_DIR", str(tmp_path / "outputs"))
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0 and "| random" in result.stdout
    assert (tmp_path / "outputs" / "report.csv").exists()


def test_each_line_names_the_code_its_runs_came_from_and_a_mix_shows(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    write_run(
        tmp_path, "a", sampler="random", seed=0, code={"datacull": "2.0", "commit": commit, "dirty": False}
    )
    write_run(
        tmp_path, "b", sampler="random", seed=1, code={"datacull": "2.0", "commit": commit, "dirty": True}
    )
    write_run(tmp_path, "c", sampler="rcap", seed=0)  # written before runs recorded their code
    write_run(tmp_path, "d", sampler="rcap", seed=1, code={"datacull": "2.0", "commit": None, "dirty": None})
    table = summarize(collect([tmp_path]))
    assert row(table, sampler="random")["code"] == "012345678,012345678+dirty"
    assert row(table, sampler="rcap")["code"] == "datacull 2.0,unrecorded"
    assert (
        "code (report.csv names each line's): 012345678 (1 line), 012345678+dirty (1 line), datacull 2.0 (1 line), "
        "unrecorded (1 line)." in markdown(table, failed_runs(collect([tmp_path])))
    )


def test_a_run_folder_written_under_a_settings_old_name_averages_with_the_new_name(tmp_path):
    """sampler.stratified became sampler.class_balanced: the study's earlier folders still pair with new runs."""
    write_run(tmp_path, "old", sampler="random", seed=0, config={"sampler": {"stratified": False}})
    write_run(
        tmp_path,
        "new",
        sampler="random",
        seed=1,
        config={"sampler": {"class_balanced": False, "stratified": None}},
    )
    write_run(tmp_path, "balanced", sampler="random", seed=2, config={"sampler": {"stratified": True}})
    table = summarize(collect([tmp_path]))
    assert sorted(table["runs"]) == [1, 2]
    assert row(table, runs=2)["settings"] in ("", "sampler.class_balanced=False")
