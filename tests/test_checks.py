"""One rule for settings (datacull/checks.py): a value that cannot mean what it says is a one-line error, before
anything trains, with the run's summary saying failed; a legal but degenerate one is a warning in the log and in
``summary.json``."""

from __future__ import annotations

import json
import shutil

import pytest

from datacull.errors import DataError, InputError
from datacull.runner import train

from .conftest import fast_config, image_folder_overrides, write_image_folder


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.eval_every=0", r"trainer.eval_every must be a whole number >= 1: evaluate every N epochs"),
        ("trainer.eval_every=-2", r"trainer.eval_every must be a whole number >= 1"),
        ("sampler.resample_every=0", r"sampler.resample_every must be a whole number >= 1 \(or null\)"),
        ("dataset.subset_per_class=0", r"dataset.subset_per_class must be a whole number >= 1 \(or null\)"),
        ("trainer.batch_size=32.5", r"trainer.batch_size must be a whole number >= 1: .* got 32.5"),
        ("trainer.epochs=2.5", r"trainer.epochs must be a whole number >= 1"),
        ("seed=1.5", r"seed must be a whole number >= 0"),
        ("optimizer.lr=-0.1", r"optimizer.lr must be a number > 0; got -0.1"),
        ("sampler.pruning_rate=[0.3,0.5]", r"sampler.pruning_rate must be one number in \[0, 1\) .* add -m"),
        ("trainer.steps=2.5", r"trainer.steps must be a whole number >= 1 \(or null\)"),
        ("trainer.compute=true", r"trainer.compute must be a number in \(0, 1\]"),
    ],
)
def test_a_value_that_cannot_mean_what_it_says_is_refused_before_training(tmp_path, override, message):
    cfg = fast_config(tmp_path, "sampler=rs2", "importance=uniform", override)
    with pytest.raises(InputError, match=message) as error:
        train(cfg, tmp_path / "run")
    assert "\n" not in str(error.value)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and not (tmp_path / "run" / "metrics.csv").exists()


def test_a_subset_smaller_than_the_number_of_classes_is_a_warning_in_the_log_and_the_summary(
    tmp_path, caplog
):
    cfg = fast_config(tmp_path, "sampler=random", "importance=uniform", "sampler.pruning_rate=0.95")
    summary = train(cfg, tmp_path / "run")  # 120 samples, 10 classes: keeps 6
    (warning,) = summary["warnings"]
    assert (
        warning
        == "sampler=random pruning_rate=0.95 keeps 6 sample(s) for 10 classes: some classes are never trained"
    )
    assert warning in caplog.text
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["warnings"] == [warning]
    assert "warnings" not in train(
        fast_config(tmp_path / "b", "sampler=random", "importance=uniform"), tmp_path / "b"
    )


def image_folder_config(tmp_path, root):
    return fast_config(tmp_path, *image_folder_overrides(root), "sampler=full")


def test_a_class_with_test_samples_but_no_training_samples_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "images")
    for image in (root / "train" / "b").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"class\(es\) b \(4 test samples\) have no training samples"):
        train(image_folder_config(tmp_path, root), tmp_path / "run")


def test_a_single_class_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "images")
    for split in ("train", "test"):
        shutil.rmtree(root / split / "b")
    with pytest.raises(
        DataError, match=r"the data set has 1 class\(es\) \(a\): classification needs at least two"
    ):
        train(image_folder_config(tmp_path, root), tmp_path / "run")
