"""Your own model by ``model._target_`` and the zoos by name, trained by the runner like the built-ins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from datacull.errors import InputError
from datacull.models.external import final_linear
from datacull.runner import train

from ..custom_models import TinyNet
from ..helpers import CIFAR_SMOKE, FAST, compose_config, needs_cifar, shorten

CUSTOM = ["model=custom", "model._target_=tests.custom_models.TinyNet", "+model.hidden=8"]


def config(tmp_path, *overrides):
    """FAST's tiny digits run, without its mlp's keys."""
    base = [override for override in FAST if not override.startswith("model.")]
    return shorten(
        compose_config([*base, *overrides], tmp_path), frozenset(o.split("=")[0] for o in overrides)
    )


@pytest.mark.parametrize(
    "method",
    [["importance=aum", "sampler=ccs", "sampler.pruning_rate=0.5"], ["importance=grand", "sampler=topk"]],
    ids=["aum-ccs", "grand-topk"],
)
def test_a_custom_model_trains_with_static_methods_its_size_from_the_data(tmp_path, method):
    summary = train(config(tmp_path, *CUSTOM, *method), tmp_path / "run")
    assert summary["status"] == "completed" and summary["model"] == "custom"
    assert len(summary["per_class_acc"]) == 10  # num_classes came from the data set
    assert summary["scoring_cost_samples"] > 0


def test_the_data_set_supplies_only_what_the_constructor_names():
    from datacull.models.external import custom

    model = custom(1, (8, 8), 10, _target_="tests.custom_models.TinyNet", hidden=4)
    assert isinstance(model, TinyNet) and model.hidden == 4
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_the_final_linear_layer_is_found_or_named():
    model = TinyNet((1, 8, 8), 10)
    assert final_linear(model) is model.classifier[3]  # the last linear layer of .classifier
    assert final_linear(model, "classifier.1") is model.classifier[1]
    with pytest.raises(InputError, match=r"model.feature_layer=classifier.2 is a ReLU, not an nn.Linear"):
        final_linear(model, "classifier.2")
    with pytest.raises(InputError, match=r"NoLinear has no nn.Linear layer .* set model.feature_layer"):
        from ..custom_models import NoLinear

        final_linear(NoLinear(10))
    fc = nn.Module()
    fc.body, fc.fc = nn.Linear(3, 4), nn.Linear(4, 2)
    assert final_linear(fc) is fc.fc


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=custom"], r"model=custom needs model._target_=<package.module.Class>"),
        (["model=custom", "model._target_=tests.nowhere.Net"], r"cannot import tests.nowhere"),
        (
            ["model=custom", "model._target_=tests.custom_models.Missing"],
            r"tests.custom_models has no Missing",
        ),
        (
            ["model=torchvision", "model.arch=resnet0"],
            r"model.arch=resnet0 is not a torchvision classification",
        ),
        (["model=timm", "model.arch=nothing_like_it"], r"model.arch=nothing_like_it is not a timm model"),
    ],
)
def test_a_model_that_cannot_be_built_is_a_one_line_error(tmp_path, overrides, message):
    with pytest.raises(InputError, match=message):
        train(config(tmp_path, *overrides), tmp_path / "run")


@needs_cifar
@pytest.mark.parametrize(
    "zoo",
    [["model=torchvision", "model.arch=mobilenet_v3_small"], ["model=timm", "model.arch=test_resnet"]],
    ids=["torchvision", "timm"],
)
def test_a_zoo_model_trains_one_epoch_on_a_cifar_subset(tmp_path, zoo):
    if zoo[0] == "model=timm":
        pytest.importorskip("timm")
    smoke = [override for override in CIFAR_SMOKE if not override.startswith("model")]
    cfg = config(tmp_path, *smoke, *zoo, "trainer.epochs=1", "sampler=random", "importance=uniform")
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["epochs_trained"] == 1


def test_a_hidden_linear_layer_is_never_taken_for_the_classifier():
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(64, 10)
            self.head = nn.Linear(10, 256)  # called head, but not the classifier
            self.out = nn.Linear(256, 10)

        def forward(self, x):
            return self.out(self.head(self.body(x)))

    model = Wide()
    assert final_linear(model, num_classes=10) is model.out
    with pytest.raises(InputError, match=r"no nn.Linear layer with 3 outputs \(one per class\)"):
        final_linear(model, num_classes=3)
