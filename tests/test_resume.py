"""A run killed with SIGKILL in the middle of an epoch and resumed ends exactly like the same run uninterrupted: on
resident images, and on a table of your own streamed through DataLoader workers with a per-sample transform."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .helpers import REPO, metrics_without_timing

#: Small batches make an epoch mostly training steps, so a kill at a random moment lands inside one.
SETUP = ["trainer.epochs=8", "trainer.batch_size=8", "trainer.progress=log"]
DIGITS = ["model.hidden=64"]
#: scikit-learn's breast cancer table by ``dataset._target_``, a model of the tests' by ``model._target_``
TABLE = [
    "dataset=custom",
    "dataset._target_=tests.custom_data.BreastCancer",
    "model=custom",
    "model._target_=tests.custom_models.TabularNet",
]
TIMING_AND_PLACE = {
    "wall_time_s",
    "train_time_s",
    "eval_time_s",
    "run_dir",
    "started_at",
    "finished_at",
    "scoring_wall_time_s",
    "scoring_cost_s",
}


def env_for(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATACULL_OUTPUT_DIR": str(root / "outputs"),
        "DATACULL_CACHE_DIR": str(root / "cache"),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),  # tests.custom_data
    }


def start(root: Path, run_dir: Path, overrides: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "datacull", "train", *SETUP, *overrides, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(
        command, cwd=root, env=env_for(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def finished_rows(run_dir: Path) -> int:
    try:
        return len(pd.read_csv(run_dir / "metrics.csv"))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


def comparable_summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {key: value for key, value in summary.items() if key not in TIMING_AND_PLACE}


@pytest.mark.parametrize(
    "overrides",
    [
        [*DIGITS, "importance=rcap", "sampler=rcap"],
        [*DIGITS, "importance=aum", "sampler=ccs", "importance.trajectory_length=2"],
        [*TABLE, "dataset.workers=2", "importance=aum", "sampler=ccs", "importance.trajectory_length=2"],
        [
            *TABLE,
            "dataset.workers=1",
            "dataset.augment._target_=tests.custom_data.GaussianNoise",
            "sampler=infobatch",
        ],
    ],
    ids=["dynamic-rcap", "static-aum-ccs", "table-static-aum-ccs", "table-dynamic-infobatch-augmented"],
)
@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, overrides):
    (tmp_path / "reference").mkdir()
    reference = tmp_path / "reference" / "run"
    process = start(tmp_path / "reference", reference, overrides)
    assert process.wait(timeout=300) == 0, process.stderr.read()

    killed_root = tmp_path / "killed"
    killed_root.mkdir()
    killed = killed_root / "run"
    process = start(killed_root, killed, overrides)
    deadline = time.monotonic() + 300
    while finished_rows(killed) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert json.loads((killed / "summary.json").read_text())["status"] == "running"
    assert 3 <= finished_rows(killed) < 8

    result = subprocess.run(
        [sys.executable, "-m", "datacull", "resume", str(killed)],
        cwd=killed_root,
        env=env_for(killed_root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    expected = metrics_without_timing(reference)
    resumed = metrics_without_timing(killed)
    pd.testing.assert_frame_equal(resumed, expected)
    assert comparable_summary(killed) == comparable_summary(reference)
    assert pd.read_csv(killed / "samples.csv").equals(pd.read_csv(reference / "samples.csv"))
    assert "resuming" in (killed / "train.log").read_text()
