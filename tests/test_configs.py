"""Every config option and preset composes, and the contract keys are where users expect them."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from datacull.paths import config_groups

from .conftest import compose_config


@pytest.mark.parametrize("experiment", config_groups()["experiment"])
def test_experiment_presets_compose(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["trainer"]["epochs"] >= 1 and 0 <= resolved["sampler"]["pruning_rate"] < 1


@pytest.mark.parametrize("group, options", [(g, o) for g, o in config_groups().items() if g != "experiment"])
def test_every_option_of_every_group_composes(group, options):
    for option in options:
        OmegaConf.to_container(compose_config([f"{group}={option}"]), resolve=True)


def test_contract_keys_of_the_default_config(monkeypatch):
    monkeypatch.delenv("DATACULL_DATA_DIR", raising=False)
    cfg = compose_config()
    assert cfg.dataset.name == "digits" and cfg.importance.name == "rcap" and cfg.sampler.name == "rcap"
    assert cfg.sampler.pruning_rate == 0.5 and cfg.seed == 0
    for key in ("epochs", "batch_size", "device", "amp", "eval_every"):
        assert key in cfg.trainer
    for key in ("root", "subset_per_class", "val_fraction"):
        assert key in cfg.dataset
    cifar = compose_config(["dataset=cifar10"])
    assert Path(cifar.dataset.root).expanduser().is_absolute()
    monkeypatch.setenv("DATACULL_DATA_DIR", "/data/here")
    assert compose_config(["dataset=cifar10"]).dataset.root == "/data/here"


def test_trajectory_importances_keep_the_original_parameter_names():
    assert {"trajectory_length", "window_size", "decay"} <= set(
        compose_config(["importance=tdds"]).importance
    )
    assert "trajectory_length" in compose_config(["importance=aum"]).importance
    assert {"beta", "clipping_threshold"} <= set(compose_config(["importance=rcap"]).importance)
