"""One rule for settings (datacull/checks.py): a value that cannot mean what it says is a one-line error, before
anything trains, with the run's summary saying failed; a legal but degenerate one is a warning in the log and in
``summary.json``."""

from __future__ import annotations

import copy
import functools
import json
import shutil

import pytest
from omegaconf import OmegaConf, open_dict

from datacull.checks import EVERY_METHOD, METHOD_GROUPS, SCHEMA, accepts, check_settings, setting_of
from datacull.errors import DataError, InputError
from datacull.paths import config_dir
from datacull.runner import train

from .helpers import compose_config, fast_config, image_folder_overrides, write_image_folder


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
        ("optimizer.lr=-0.1", r"optimizer.lr must be a number > 0: the base learning rate; got -0.1"),
        ("sampler.pruning_rate=[0.3,0.5]", r"sampler.pruning_rate must be a number in \[0, 1\): .* add -m"),
        (
            "optimizer.momentum=-0.5",
            r"optimizer.momentum must be a number in \[0, 1\): SGD momentum; got -0.5",
        ),
        ("optimizer.weight_decay=-1", r"optimizer.weight_decay must be a number >= 0"),
        ("optimizer.nesterov=maybe", r"optimizer.nesterov must be true or false: .* got 'maybe'"),
        ("scheduler.min_lr_factor=2", r"scheduler.min_lr_factor must be a number in \[0, 1\]"),
        ("trainer.progress=loud", r"trainer.progress must be one of auto, bar, log"),
        ("+model.width=abc", r"model.width must be a whole number >= 1"),
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


def conf_files():
    """Every conf file whose keys a run can hold: the root config and each group's options."""
    return [config_dir() / "config.yaml"] + sorted(
        path
        for path in config_dir().glob("*/**/*.yaml")
        if path.relative_to(config_dir()).parts[0] not in ("experiment", "hydra")
    )


def defaults_of(path):
    """``path``'s leaf values by the dotted key a run's config holds them under (a group's under its name)."""
    values = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    values.pop("defaults", None)
    group = path.parent.relative_to(config_dir()).parts
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(values, "".join(f"{part}." for part in group))
    return flat


def test_the_schema_is_the_keys_of_the_conf_files():
    """A key added to conf/ without a schema entry, or an entry whose key left conf/, fails here."""
    in_conf = {key for path in conf_files() for key in defaults_of(path)}
    unknown = sorted(key for key in in_conf if setting_of(key) is None)
    stale = sorted(set(SCHEMA) - in_conf)
    assert not unknown and not stale, (
        f"keys without a schema entry: {unknown}; schema entries for no key: {stale}"
    )


@pytest.mark.parametrize(
    "path", conf_files(), ids=lambda path: str(path.relative_to(config_dir()).with_suffix(""))
)
def test_every_default_in_conf_is_accepted_by_the_schema(path):
    for key, value in defaults_of(path).items():
        if not (isinstance(value, str) and "${" in value):  # interpolations are checked once resolved
            assert accepts(setting_of(key), value), f"{path.name}: {key}={value!r}"


def wrong_value(setting):
    """A value of the wrong type for ``setting``."""
    return {"whole": 2.5, "number": "abc", "flag": "maybe", "choice": "nonsense", "numbers": "abc"}.get(
        setting.kind, [1, 2]
    )


@functools.cache
def config_holding(key):
    """The default config, with the built-in method that holds ``key`` selected where ``key`` is a method's."""
    group = key.split(".", 1)[0]
    if group not in METHOD_GROUPS or key in EVERY_METHOD:
        return compose_config([])
    option = next(
        path.stem for path in conf_files() if key in defaults_of(path) and path.parent.name == group
    )
    return compose_config([f"{group}={option}"])


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_a_value_of_the_wrong_type_for_any_key_is_one_line_naming_it(key):
    cfg = copy.deepcopy(config_holding(key))
    value = wrong_value(SCHEMA[key])
    with open_dict(cfg):
        OmegaConf.update(cfg, key, value, force_add=True)
    with pytest.raises(InputError) as error:
        check_settings(cfg)
    message = str(error.value)
    assert message.startswith(f"{key} must be ") and "\n" not in message and repr(value) in message


def test_a_plugin_methods_parameter_is_not_read_as_a_built_in_ones():
    """CCS's sampler.beta is a share in [0, 1); a plugin's sampler may have a beta of its own."""
    cfg = copy.deepcopy(config_holding("sampler.beta"))
    with open_dict(cfg):
        cfg.sampler.beta = 5.0
    with pytest.raises(InputError, match=r"sampler.beta must be a number in \[0, 1\) or auto"):
        check_settings(cfg)
    with open_dict(cfg):
        cfg.sampler.name = "my_plugin_sampler"
    check_settings(cfg)
    with open_dict(cfg):
        cfg.sampler.pruning_rate = 1.5  # every sampler's
    with pytest.raises(InputError, match="sampler.pruning_rate must be"):
        check_settings(cfg)


@pytest.mark.parametrize("preset", sorted(path.stem for path in (config_dir() / "experiment").glob("*.yaml")))
def test_every_experiment_preset_passes_the_schema(preset):
    check_settings(compose_config([f"experiment={preset}"]))
