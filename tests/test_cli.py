"""The `datacull` command end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from datacull.catalog import list_entries

from .helpers import CIFAR_SMOKE, FAST, datacull, needs_cifar, run_dirs


@pytest.mark.slow
def test_default_train_writes_a_complete_run_folder(tmp_path):
    datacull("train", cwd=tmp_path)
    (run,) = run_dirs(tmp_path / "outputs" / "runs")
    assert "digits_rcap_rcap_p0.5_s0" in run.name
    names = {path.name for path in run.iterdir()}
    assert {
        ".hydra",
        "train.log",
        "metrics.csv",
        "summary.json",
        "samples.csv",
        "checkpoint.pt",
        "config.yaml",
    } <= names
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test_acc"] > 0.5
    assert summary["dataset"] == "digits" and summary["importance"] == "rcap" and summary["sampler"] == "rcap"
    assert len(pd.read_csv(run / "metrics.csv")) == summary["epochs"]
    assert "epoch 10/10" in (run / "train.log").read_text()


def test_list_shows_every_method_with_its_paper(tmp_path):
    output = datacull("list", cwd=tmp_path).stdout
    for kind in ("importance", "sampler", "dataset", "model"):
        for entry in list_entries(kind):
            line = next(line for line in output.splitlines() if line.strip().startswith(entry.name + " "))
            assert entry.paper in line


def test_help_lists_the_config_groups(tmp_path):
    output = datacull("train", "--help", cwd=tmp_path).stdout
    assert "importance" in output and "tdds" in output and "sampler.pruning_rate" in output


@pytest.mark.slow
def test_hydra_flags_pass_through(tmp_path):
    printed = datacull(
        "train", "--cfg", "job", "sampler=ccs", "sampler.pruning_rate=0.7", cwd=tmp_path
    ).stdout
    assert "pruning_rate: 0.7" in printed and "name: ccs" in printed
    assert not (tmp_path / "outputs").exists()
    assert "Defaults List" in datacull("train", "--info", "defaults", cwd=tmp_path).stdout


def test_unknown_option_is_one_line_naming_the_valid_ones(tmp_path):
    result = datacull("train", "importance=tdd", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown importance 'tdd'" in result.stderr and "tdds" in result.stderr


def test_input_error_in_a_run_is_one_line_and_no_completed_summary(tmp_path):
    result = datacull(
        "train", "sampler=ccs", "sampler.beta=0.6", "sampler.pruning_rate=0.5", cwd=tmp_path, check=False
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: CCS needs 0 <= sampler.beta")
    (run,) = run_dirs(tmp_path / "outputs")
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"


@pytest.mark.slow
@needs_cifar
def test_cifar_subset_dynamic_method(tmp_path):
    datacull(
        "train", *CIFAR_SMOKE, "importance=rcap", "sampler=rcap", "sampler.pruning_rate=0.5", cwd=tmp_path
    )
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    # 20 per class, none held out: nothing reads a validation split
    assert summary["status"] == "completed" and summary["num_train_samples"] == 200
    assert pd.read_csv(run / "metrics.csv")["subset_size"].tolist() == [100, 100]


@pytest.mark.slow
@needs_cifar
def test_cifar_subset_static_method_with_its_scoring_run(tmp_path):
    datacull(
        "train",
        *CIFAR_SMOKE,
        "importance=tdds",
        "sampler=ccs",
        "sampler.pruning_rate=0.7",
        "importance.trajectory_length=3",
        "importance.window_size=2",
        "scoring.epochs=4",
        cwd=tmp_path,
    )
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scoring_samples"] == 3 * 200 and summary["scoring_cache_hit"] is False
    assert summary["scoring_schedule_epochs"] == 4
    assert pd.read_csv(run / "metrics.csv")["subset_size"].tolist() == [60, 60]
    log = (run / "train.log").read_text()
    assert "scoring run: training on all 200 samples, epochs 1-3 of a 4-epoch schedule" in log


@pytest.mark.slow
@needs_cifar
def test_multirun_over_pruning_rates_scores_once(tmp_path):
    datacull(
        "train",
        "-m",
        *CIFAR_SMOKE,
        "importance=aum",
        "sampler=ccs",
        "sampler.pruning_rate=0.3,0.5",
        "importance.trajectory_length=2",
        cwd=tmp_path,
    )
    runs = run_dirs(tmp_path / "outputs" / "sweeps")
    assert [run.name.split("_")[0] for run in runs] == ["0", "1"] and runs[0].parent == runs[1].parent
    first, second = (json.loads((run / "summary.json").read_text()) for run in runs)
    assert (first["pruning_rate"], second["pruning_rate"]) == (0.3, 0.5)
    assert first["scoring_samples"] == 2 * 200 and second["scoring_samples"] == 0
    assert second["scoring_cache_hit"] is True and second["scoring_cost_samples"] == 2 * 200
    assert "scoring cache hit" in (runs[1] / "train.log").read_text()


@pytest.mark.slow
def test_resume_refuses_a_folder_that_is_not_a_run_and_a_completed_run(tmp_path):
    result = datacull("resume", str(tmp_path), cwd=tmp_path, check=False)
    assert result.returncode == 2 and "not a resumable datacull run folder" in result.stderr
    datacull("train", "trainer.epochs=1", cwd=tmp_path)
    (run,) = run_dirs(tmp_path / "outputs")
    result = datacull("resume", str(run), cwd=tmp_path, check=False)
    assert result.returncode == 2 and "already completed" in result.stderr


@pytest.mark.slow
def test_a_refused_run_into_a_folder_holding_a_run_writes_nothing(tmp_path):
    run = tmp_path / "run"
    datacull("train", *FAST, f"hydra.run.dir={run}", cwd=tmp_path)

    def contents():
        return {path: path.read_bytes() for path in sorted(run.rglob("*")) if path.is_file()}

    before = contents()
    assert run / ".hydra" / "config.yaml" in before
    again = datacull("train", *FAST, "optimizer.lr=0.5", f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert again.returncode == 2
    assert (
        again.stderr.strip()
        == f"error: {run} already holds a completed run; choose a new folder for this one"
    )
    assert contents() == before  # not .hydra/config.yaml, overrides.yaml, nor train.log


@pytest.mark.parametrize("variable", ["DATACULL_OUTPUT_DIR", "DATACULL_CACHE_DIR"])
def test_an_output_or_cache_folder_that_cannot_be_written_is_one_line_before_anything_runs(
    tmp_path, monkeypatch, variable
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a file where the folder should go (a read-only mount reads the same to root)
    monkeypatch.setenv(variable, str(blocker / "sub"))
    from typer.testing import CliRunner

    from datacull.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", *FAST])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert (
        line.startswith("error: ")
        and f"cannot be written ({blocker} is not a folder): choose a writable" in line
    )
    assert not (tmp_path / "outputs").exists()


def test_an_in_process_train_leaves_the_root_logger_as_it_found_it():
    """Hydra's job logging would leave a handler on the runner's closed stream and one on the run's train.log."""
    from typer.testing import CliRunner

    from datacull.cli import app

    before = list(logging.root.handlers)
    result = CliRunner().invoke(app, ["train", *FAST])
    assert result.exit_code == 0, result.output
    assert logging.root.handlers == before
