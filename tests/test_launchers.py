"""Sweeps through Hydra launchers: joblib jobs in parallel sharing one scoring run, failed jobs named at the
end whatever the launcher, and the SLURM launcher's conf file (composed, never submitted)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import datetime
from pathlib import Path

import hydra
import pytest
import typer
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import get_class
from omegaconf import OmegaConf

from datacull import scoring_run
from datacull.cli import _check_composes, _train_help
from datacull.parts import load_dataset
from datacull.paths import config_dir, config_groups
from datacull.summary import unfinished_runs

from .helpers import REPO, compose_config, datacull, run_dirs, scoring_request

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")

STATIC = ["importance=aum", "sampler=ccs", "trainer.epochs=1"]


def summaries(sweeps: Path) -> list[dict]:
    return [json.loads((run / "summary.json").read_text()) for run in run_dirs(sweeps)]


def log_time(run: Path, containing: str) -> datetime:
    line = next(line for line in (run / "train.log").read_text().splitlines() if containing in line)
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")


@pytest.mark.slow
def test_joblib_jobs_run_in_parallel_and_train_the_shared_scoring_run_once(tmp_path):
    datacull(
        "train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *STATIC,
        "importance.trajectory_length=4",
        "scoring.epochs=4",
        "sampler.pruning_rate=0.3,0.5",
        cwd=tmp_path,
    )
    runs = run_dirs(tmp_path / "outputs" / "sweeps")
    first, second = summaries(tmp_path / "outputs" / "sweeps")
    assert [first["status"], second["status"]] == ["completed", "completed"]
    assert (first["pruning_rate"], second["pruning_rate"]) == (0.3, 0.5)
    (miss, trained), (hit, reused) = sorted(
        zip((first, second), runs, strict=True), key=lambda pair: pair[0]["scoring_cache_hit"]
    )
    assert (miss["scoring_cache_hit"], hit["scoring_cache_hit"]) == (False, True)
    assert miss["scoring_samples"] == 4 * miss["num_train_samples"] and hit["scoring_samples"] == 0
    assert hit["scoring_cost_samples"] == miss["scoring_cost_samples"]
    entries = [path for path in (tmp_path / "cache" / "scoring").iterdir() if path.is_dir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".tmp")
    # in parallel: the job that reused the entry had started before the other finished training it,
    # so it waited on the entry's lock rather than running after it
    assert (
        log_time(reused, "train / ")
        < log_time(trained, "scoring epoch 4/4")
        <= log_time(reused, "scoring cache hit")
    )


@pytest.mark.parametrize(
    "launcher, sweep, error",
    [
        (  # an input error
            "joblib",
            ["sampler=ccs", "sampler.beta=0.4", "sampler.pruning_rate=0.3,0.5"],
            "InputError: CCS needs 0 <= sampler.beta <= sampler.pruning_rate; got beta=0.4, pruning_rate=0.3",
        ),
        # any other exception (here from the user's own model) is handled the same way, its traceback kept in the
        # job's train.log
        (
            "basic",
            [
                "sampler=random",
                "model=custom",
                "model._target_=tests.custom_models.FailsInForward",
                "+model.fail=true,false",
            ],
            "RuntimeError: the model's forward failed on purpose",
        ),
    ],
    ids=["input-error-joblib", "exception-basic"],
)
@pytest.mark.slow
def test_a_failed_sweep_job_is_named_at_the_end_and_the_others_complete(tmp_path, launcher, sweep, error):
    result = datacull(
        "train",
        "-m",
        f"hydra/launcher={launcher}",
        "importance=uniform",  # no scoring run: only the failure matters here
        "trainer.epochs=1",
        *sweep,
        cwd=tmp_path,
        check=False,
        env={"PYTHONPATH": str(REPO)},  # tests.custom_models
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    failed, completed = run_dirs(tmp_path / "outputs" / "sweeps")
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == f"error: sweep job {failed} failed: {error}"
    assert json.loads((completed / "summary.json").read_text())["status"] == "completed"
    assert ("Traceback" in (failed / "train.log").read_text()) == (not error.startswith("InputError"))


def test_unfinished_runs_reads_the_summaries_written_since_the_sweep_started(tmp_path):
    old = tmp_path / "0_old"
    old.mkdir()
    (old / "summary.json").write_text(json.dumps({"status": "failed", "error": "from an earlier sweep"}))
    os.utime(old / "summary.json", (1000.0, 1000.0))
    started = time.time() - 1
    for name, summary in {
        "1_ok": {"status": "completed"},
        "2_bad": {"status": "failed", "error": "RuntimeError: boom"},
        "3_killed": {"status": "running"},
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "4_torn").mkdir()
    (tmp_path / "4_torn" / "summary.json").write_text("{")
    assert [
        (Path(folder).name, reason.split(" (")[0]) for folder, reason in unfinished_runs(tmp_path, started)
    ] == [
        ("2_bad", "RuntimeError: boom"),
        ("3_killed", "status 'running'"),
        ("4_torn", "summary.json cannot be read"),
    ]


def test_the_cli_pins_the_sweep_folder_as_hydra_resolves_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DATACULL_OUTPUT_DIR", str(tmp_path / "out"))
    # a swept key inside the folder's name takes its default, as in Hydra's own sweep folder
    folder = _check_composes(["-m", "dataset=digits", "seed=0,1", "output_dir=" + str(tmp_path / "other")])
    assert Path(folder).parent == tmp_path / "other" / "sweeps" and Path(folder).name.endswith("_digits")
    assert _check_composes(["seed=1"]) is None  # a single run has no sweep folder


def test_a_misspelled_launcher_is_one_line(tmp_path):
    result = datacull("train", "-m", "hydra/launcher=joblibb", cwd=tmp_path, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "Could not find 'hydra/launcher/joblibb'" in result.stderr and "slurm" in result.stderr


def test_a_launcher_that_is_not_installed_names_the_extra(monkeypatch, capsys):
    def missing(*args, **kwargs):
        raise MissingConfigException(
            "In 'hydra/config': Could not find 'hydra/launcher/joblib'\n\nAvailable options in 'hydra/launcher':\n"
            "\tbasic\nConfig search path:\n\tprovider=hydra, path=pkg://hydra.conf"
        )

    monkeypatch.setattr(hydra, "compose", missing)
    with pytest.raises(typer.Exit):
        _check_composes(["-m", "hydra/launcher=joblib"])
    assert capsys.readouterr().err == (
        "error: In 'hydra/config': Could not find 'hydra/launcher/joblib' Available options in 'hydra/launcher': "
        'basic (that launcher needs: pip install "datacull[joblib]")\n'
    )


def test_slurm_launcher_conf_composes_to_the_submitit_launcher():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    cls = get_class(launcher._target_)
    assert f"{cls.__module__}.{cls.__name__}" == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert launcher.partition == "gpu" and launcher.tasks_per_node == 1 and launcher.gpus_per_node == 1
    assert OmegaConf.to_container(launcher)["submitit_folder"].startswith("${hydra.sweep.dir}/")
    assert "hydra" not in config_groups()
    assert "hydra/launcher=joblib" in _train_help() and "hydra/launcher=slurm" in _train_help()


def test_a_scoring_entry_written_meanwhile_by_another_job_is_kept(tmp_path, monkeypatch):
    """Where the lock does not hold (a filesystem without locks), the second writer keeps the first entry."""
    cfg = compose_config(["trainer.epochs=1"], tmp_path)
    data = load_dataset(cfg.dataset, tmp_path / "cache")
    train = scoring_run._train_scoring_epochs
    monkeypatch.setattr(scoring_run, "file_lock", lambda path: contextlib.nullcontext())
    request = scoring_request(cfg, data, 1, 1, tmp_path / "cache")

    def racing(*args, **kwargs):
        monkeypatch.setattr(scoring_run, "_train_scoring_epochs", train)
        other = scoring_run.obtain_scoring_run(request)
        assert not other.cache_hit
        return train(*args, **kwargs)

    monkeypatch.setattr(scoring_run, "_train_scoring_epochs", racing)
    run = scoring_run.obtain_scoring_run(request)
    assert not run.cache_hit and [path.name for path in (tmp_path / "cache" / "scoring").iterdir()] == [
        run.directory.name
    ]
    assert scoring_run._read_valid_entry(run.directory) is not None
