"""One score plan (datacull/plan.py), one trainer-settings home (datacull/settings.py), one scoring-cost record
(datacull/summary.py): each decided once and read by every consumer."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from datacull.budget import Budget
from datacull.catalog import get_importance, list_importances, list_samplers
from datacull.paths import config_dir
from datacull.plan import NONE, ONLINE, STATIC, plan_scores
from datacull.settings import TrainerSettings
from datacull.summary import RunSummary, ScoringCost

from .helpers import make_sampler, tensor_dataset

DATASET = tensor_dataset([0, 1] * 10)


@pytest.mark.parametrize("sampler", list_samplers())
@pytest.mark.parametrize("importance", list_importances())
def test_the_plan_of_every_pair_follows_the_sampler_then_the_importance(importance, sampler):
    loader = make_sampler(sampler, DATASET, 0.5)
    importance_cls = get_importance(importance)
    params = OmegaConf.to_container(OmegaConf.load(config_dir() / "importance" / f"{importance}.yaml"))
    params.pop("name")
    plan = plan_scores(loader, importance_cls.is_online(**params), importance_cls.requires)
    if not loader.reads_scores:
        assert plan.mode == NONE and not plan.reads_scoring_run
    elif importance_cls.is_online(**params) and not loader.static:
        assert plan.mode == ONLINE and not plan.reads_scoring_run
    else:  # a static sampler chooses once, whatever the importance
        assert plan.mode == STATIC
        assert plan.reads_scoring_run == bool(importance_cls.requires)


def test_an_online_importance_under_a_static_sampler_is_static():
    loss = get_importance("loss")
    assert loss.is_online(mode="latest") and not loss.is_online(mode="mean")
    static = make_sampler("topk", DATASET, 0.5)
    dynamic = make_sampler("ucb", DATASET, 0.5)
    assert plan_scores(static, True, ("loss",)).mode == STATIC
    assert plan_scores(dynamic, True, ("loss",)).mode == ONLINE
    assert plan_scores(dynamic, False, ("loss",)).reads_scoring_run


def test_trainer_settings_are_the_keys_of_conf_trainer_default_with_its_values_as_defaults():
    defaults = OmegaConf.to_container(OmegaConf.load(config_dir() / "trainer" / "default.yaml"))
    assert [column.name for column in dataclasses.fields(TrainerSettings)] == list(defaults)
    settings = TrainerSettings.of({"epochs": 3})
    assert settings.epochs == 3
    assert {key: getattr(settings, key) for key in defaults if key != "epochs"} == {
        key: value for key, value in defaults.items() if key != "epochs"
    }
    assert TrainerSettings.of(settings) is settings


def test_the_scoring_cost_is_written_as_its_scoring_fields_and_read_back():
    cost = ScoringCost(
        **{"samples": 10, "cost_samples": 12, "wall_time_s": 1.5, "cost_s": 2.0, "cache_hit": True}
    )
    cost = dataclasses.replace(cost, epochs=3, schedule_epochs=10, model="cnn", flops_ratio=0.25)
    summary = RunSummary(
        "completed", "aum", "ccs", 0.5, "digits", "mlp", 2, None, 0, "/r", 1, "t", scoring=cost
    )
    written = summary.to_json()
    assert "scoring" not in written
    assert {key: written[key] for key in written if key.startswith("scoring_")} == cost.fields()
    assert RunSummary.from_json(written).scoring == cost
    without_proxy = dataclasses.replace(cost, model=None, flops_ratio=None)
    written = dataclasses.replace(summary, scoring=without_proxy).to_json()
    assert "scoring_model" not in written and "scoring_flops_ratio" not in written  # unknown results stay out
    assert RunSummary.from_json(written).scoring == without_proxy


@pytest.mark.parametrize(
    "budget, epochs, steps, done",
    [
        (Budget(3), 2, 100, False),
        (Budget(3), 3, 0, True),
        (Budget(3, steps=7), 10, 6, False),
        (Budget(3, steps=7), 1, 7, True),
    ],
)
def test_a_budget_ends_by_epochs_or_by_steps_alone(budget, epochs, steps, done):
    assert budget.done(epochs, steps) is done
