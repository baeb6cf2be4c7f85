"""Bad input: one error naming the problem and the fix, and never a summary that claims `completed`.

Each test is a row of the table in docs/errors.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from datacull.cli import app
from datacull.errors import DatacullError, DataError, DivergenceError, InputError
from datacull.runner import resume as resume_run
from datacull.runner import train

from .helpers import fast_config, image_folder_overrides, write_image_folder


def failed_summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    return summary


def run_expecting(tmp_path, error_type, match, *overrides):
    with pytest.raises(error_type, match=match) as raised:
        train(fast_config(tmp_path, *overrides), tmp_path / "run")
    message = str(raised.value)
    assert "\n" not in message and isinstance(raised.value, DatacullError)
    assert failed_summary(tmp_path / "run")["error"].endswith(message)
    return message


@pytest.mark.parametrize("rate", ["1.2", "-0.1", "1.0"])
def test_pruning_rate_outside_zero_one(tmp_path, rate):
    run_expecting(
        tmp_path,
        InputError,
        r"sampler.pruning_rate must be a number in \[0, 1\): .*REMOVED",
        f"sampler.pruning_rate={rate}",
    )


@pytest.mark.parametrize(
    "group, wrong, valid",
    [
        ("importance", "aumm", "aum"),
        ("sampler", "cs", "ccs"),
        ("dataset", "cifar", "cifar10"),
        ("model", "resnet", "resnet18"),
    ],
)
def test_unknown_names_list_the_valid_ones(group, wrong, valid):
    result = CliRunner().invoke(app, ["train", f"{group}={wrong}"])
    assert result.exit_code == 2
    assert f"unknown {group} '{wrong}'; valid options:" in result.output and valid in result.output
    assert result.output.strip().count("\n") == 0


def test_misspelled_key_is_refused_before_running_with_the_closest_keys():
    result = CliRunner().invoke(app, ["train", "sampler.pruning_rat=0.3"])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "sampler.pruning_rat does not exist; did you mean sampler.pruning_rate" in result.output
    assert "+sampler" not in result.output  # never Hydra's advice to append the misspelled key


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["dataset.root=/nonexistent"],
            "dataset.root is not read by dataset=digits; dataset=cifar10, cifar100, imagefolder and torchvision read it",
        ),
        (["sampler.beta=0.1"], "sampler.beta is not read by sampler=rcap; sampler=ccs reads it"),
        (
            ["trainer.epochs=1", "model.width=3"],
            "model.width is not read by model=mlp; model=cnn and resnet18 read it",
        ),
    ],
)
def test_a_key_the_chosen_component_does_not_read_is_refused(overrides, message):
    result = CliRunner().invoke(app, ["train", *overrides])
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}"


def test_keys_of_the_chosen_component_and_appended_keys_pass_the_check():
    runner = CliRunner()
    assert runner.invoke(app, ["train", "sampler=ccs", "sampler.beta=0.1", "--cfg", "job"]).exit_code == 0
    assert runner.invoke(app, ["train", "+trainer.note=x", "--cfg", "job"]).exit_code == 0


def test_window_longer_than_trajectory(tmp_path):
    run_expecting(
        tmp_path,
        InputError,
        "window_size .* must not exceed .*trajectory_length",
        "importance=tdds",
        "sampler=tdds",
        "importance.window_size=12",
        "importance.trajectory_length=10",
        "scoring.epochs=20",
    )
    assert not (tmp_path / "cache" / "scoring").exists(), "the scoring run must not start on a bad setting"


def test_a_trajectory_longer_than_the_scoring_schedule(tmp_path):
    run_expecting(
        tmp_path,
        InputError,
        r"importance.trajectory_length \(5\) exceeds scoring.epochs \(3\)",
        "importance=aum",
        "sampler=ccs",
        "importance.trajectory_length=5",
        "scoring.epochs=3",
    )
    assert not (tmp_path / "cache" / "scoring").exists()


def test_ccs_beta_above_pruning_rate(tmp_path):
    run_expecting(
        tmp_path,
        InputError,
        "beta <= sampler.pruning_rate",
        "sampler=ccs",
        "importance=aum",
        "sampler.pruning_rate=0.3",
        "sampler.beta=0.4",
    )
    assert not (tmp_path / "cache" / "scoring").exists()


@pytest.mark.parametrize(
    "accuracies, match",
    [
        ("[0.5,0.5]", "2 entries but the dataset has 10 classes"),
        ("[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,1.5]", r"in \[0, 1\]"),
    ],
)
def test_metriq_class_accuracies(tmp_path, accuracies, match):
    run_expecting(tmp_path, InputError, match, "sampler=metriq", f"sampler.class_wise_acc={accuracies}")


@pytest.mark.parametrize(
    "prepare, match",
    [
        (lambda root: root / "missing", "does not exist or is not a folder"),
        (lambda root: root.mkdir() or root, "is empty: expected"),
        (lambda root: (root / "val").mkdir(parents=True) or root, "has no 'train/' folder"),
        (lambda root: shutil.rmtree(write_image_folder(root) / "test") or root, "has no 'test/' folder"),
        (
            lambda root: write_image_folder(root, {"train/a/bad.jpg": b"\xff\xd8\xff\xe0 truncated"}),
            "bad.jpg is not a readable image",
        ),
        (
            lambda root: write_image_folder(root, {"train/b/notes.txt": b"not an image"}),
            "notes.txt is not a readable image",
        ),
    ],
    ids=["missing", "empty", "no-train", "no-test", "corrupt-image", "non-image-file"],
)
def test_bad_dataset_root(tmp_path, prepare, match):
    root = prepare(tmp_path / "images")
    run_expecting(
        tmp_path,
        DataError,
        match,
        "dataset=imagefolder",
        f"dataset.root={root}",
        "dataset.subset_per_class=null",
        "dataset.test_subset_per_class=null",
    )


def test_a_good_image_folder_trains(tmp_path):
    root = write_image_folder(tmp_path / "images")
    summary = train(fast_config(tmp_path, *image_folder_overrides(root)), tmp_path / "run")
    assert summary["status"] == "completed" and summary["num_train_samples"] == 8


def test_loss_turning_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # a sane first epoch, then a learning rate that blows up
    message = run_expecting(
        tmp_path,
        DivergenceError,
        "training loss became (nan|inf) in epoch [12]",
        "scheduler=step",
        "scheduler.milestones=[1]",
        "scheduler.gamma=1e12",
        "trainer.epochs=3",
    )
    assert "last good checkpoint" in message
    failed_epoch = int(message.split(" in epoch ")[1].split(";")[0])
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["epoch"] == failed_epoch - 1
    assert all(torch.isfinite(value).all() for value in checkpoint["engine"]["model"].values())


def test_resume_on_a_damaged_checkpoint(tmp_path):
    train(fast_config(tmp_path), tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (tmp_path / "run" / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot be read"):
        resume_run(tmp_path / "run")


def test_ctrl_c_records_interrupted_and_says_how_to_resume(tmp_path, monkeypatch, caplog):
    from datacull.engine import Engine

    train_epoch = Engine.train_epoch

    def interrupted_in_the_second_epoch(self, epoch, *args, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        return train_epoch(self, epoch, *args, **kwargs)

    monkeypatch.setattr(Engine, "train_epoch", interrupted_in_the_second_epoch)
    with caplog.at_level("WARNING", logger="datacull"), pytest.raises(KeyboardInterrupt):
        train(fast_config(tmp_path), tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"] == "KeyboardInterrupt"
    assert f"continue it with `datacull resume {tmp_path / 'run'}`" in caplog.text
    monkeypatch.setattr(Engine, "train_epoch", train_epoch)
    assert resume_run(tmp_path / "run")["status"] == "completed"
