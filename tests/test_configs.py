"""Every config option and preset composes and builds what it describes; the contract keys are where users
expect them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from datacull import DCLogger
from datacull.catalog import get_importance, get_sampler
from datacull.datasets import ImageData
from datacull.parts import build_importance
from datacull.paths import config_groups
from datacull.recipe import build_recipe

from .helpers import compose_config, embedding_and_logits, make_sampler, tensor_dataset


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
    for key in ("subset_per_class", "val_fraction"):
        assert key in cfg.dataset
    assert "root" not in cfg.dataset  # digits reads no folder: dataset.root is refused rather than ignored
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


CPU = torch.device("cpu")


def tiny_images(channels: int = 3, size: int = 32, classes: int = 3, count: int = 12) -> ImageData:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, channels, size, size), generator=generator, dtype=torch.uint8)
    labels = torch.arange(count) % classes
    return ImageData(images, labels, images[:6], labels[:6], classes=[str(c) for c in range(classes)])


#: Model confs that build someone else's module need to be told which.
MODEL_CHOICE = {
    "custom": ["model._target_=tests.custom_models.TinyNet"],
    "torchvision": ["model.arch=mobilenet_v3_small"],
    "timm": ["model.arch=test_resnet"],
}


@pytest.mark.parametrize("option", config_groups()["model"])
def test_every_model_conf_builds_a_classifier_with_its_final_linear_layer(option):
    if option == "timm":
        pytest.importorskip("timm")
    data = tiny_images()
    model = build_recipe(compose_config([f"model={option}", *MODEL_CHOICE.get(option, [])]), CPU).build_model(
        data
    )
    images = torch.randn(4, 3, 32, 32)
    head, embedding, logits = embedding_and_logits(model, images)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    torch.testing.assert_close(head(embedding), logits)


@pytest.mark.parametrize("option", config_groups()["optimizer"])
def test_every_optimizer_conf_builds_an_optimizer_at_its_learning_rate(option):
    cfg = compose_config([f"optimizer={option}"])
    recipe = build_recipe(cfg, CPU)
    model = recipe.build_model(tiny_images(channels=1, size=8))
    optimizer = recipe.build_optimizer(model)
    assert {group["lr"] for group in optimizer.param_groups} == {cfg.optimizer.lr}
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))


@pytest.mark.parametrize("option", config_groups()["scheduler"])
def test_every_scheduler_conf_builds_a_factor_of_progress_in_zero_one(option):
    factor = build_recipe(compose_config([f"scheduler={option}"]), CPU).build_schedule(200)
    values = [factor(step / 100) for step in range(101)]
    peak = 2 / (1 + math.cos(math.pi / 200)) if option == "rs2_cosine" else 1.0  # RS2's official overshoot
    assert all(0.0 <= value <= peak for value in values) and max(values) > 0.99


@pytest.mark.parametrize("option", config_groups()["importance"])
def test_every_importance_conf_constructs_its_importance(option, tmp_path):
    cfg = compose_config([f"importance={option}"])
    cls = get_importance(option)
    params = OmegaConf.to_container(cfg.importance, resolve=True)
    params.pop("name")
    if params.get("trajectory_length", 0) is None:
        params["trajectory_length"] = 10
    loggers = {metric: DCLogger(tmp_path / metric) for metric in cls.requires}
    importance = build_importance(cls, params, tensor_dataset([0, 1, 2] * 4), loggers)
    assert isinstance(importance, cls) and importance.online == cls.is_online(**params)


@pytest.mark.parametrize("option", config_groups()["sampler"])
@pytest.mark.filterwarnings("ignore:sampler=full trains on every sample")
def test_every_sampler_conf_constructs_its_sampler(option):
    loader = make_sampler(option, tensor_dataset([0, 1, 2] * 20), pruning_rate=0.5)
    assert isinstance(loader, get_sampler(option)) and loader.total_num_samples == 60


@pytest.mark.parametrize("experiment", config_groups()["experiment"])
def test_every_experiment_preset_builds_its_recipe_and_sampler(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    recipe = build_recipe(cfg, CPU)
    assert recipe.batch_size == cfg.trainer.batch_size
    assert recipe.build_model(tiny_images()) is not None
    loader = make_sampler(cfg.sampler.name, tensor_dataset([0, 1, 2] * 20), cfg.sampler.pruning_rate)
    assert loader.pruning_rate == pytest.approx(cfg.sampler.pruning_rate) or cfg.sampler.name == "full"


def test_a_dataset_section_without_augment_builds_a_recipe_without_augmentation():
    cfg = compose_config()
    with open_dict(cfg):
        del cfg.dataset.augment  # a plugin's generated section names no augmentation
    assert build_recipe(cfg, CPU).augment == {}
