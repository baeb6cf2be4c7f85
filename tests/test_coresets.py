"""Cheaper scoring and coresets as files: a proxy model for the scoring run, charged by its FLOPs; ``datacull
score`` and ``datacull select`` write what the runner would train on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from datacull import load_selection
from datacull.cli import app
from datacull.errors import InputError
from datacull.recipe import build_recipe
from datacull.runner import train

from .helpers import FAST, compose_config, fast_config, tensor_dataset


def kept_by_the_runner(run_dir) -> np.ndarray:
    samples = pd.read_csv(run_dir / "samples.csv")
    return np.sort(samples.loc[samples["times_selected"] > 0, "index"].to_numpy())


@pytest.mark.parametrize(
    "importance, sampler, rate, extra",
    [
        ("aum", "ccs", 0.7, []),
        ("el2n", "topk", 0.5, ["sampler.class_balanced=true"]),
        ("tdds", "tdds", 0.6, []),
    ],
)
def test_a_selection_written_by_select_equals_what_the_runner_trains_on(
    tmp_path, importance, sampler, rate, extra
):
    short = ["importance.trajectory_length=3", "scoring.epochs=3", "seed=3"]
    if importance == "tdds":
        short.append("importance.window_size=2")
    runner = CliRunner()
    scored = runner.invoke(
        app, ["score", *FAST, f"importance={importance}", *short, "--out", str(tmp_path / "s")]
    )
    assert scored.exit_code == 0, scored.output
    meta = json.loads((tmp_path / "s" / "scores.json").read_text())
    assert meta["importance"] == importance and meta["dataset"]["num_samples"] == 120
    chosen = runner.invoke(
        app,
        [
            "select",
            str(tmp_path / "s"),
            "--sampler",
            sampler,
            "--pruning-rate",
            str(rate),
            "--seed",
            "3",
            *extra,
        ],
    )
    assert chosen.exit_code == 0, chosen.output
    (folder,) = (tmp_path / "s").glob("selection_*")
    selection = load_selection(folder)
    cfg = fast_config(
        tmp_path,
        f"importance={importance}",
        f"sampler={sampler}",
        f"sampler.pruning_rate={rate}",
        *short,
        *extra,
    )
    train(cfg, tmp_path / "run")
    np.testing.assert_array_equal(selection.indices, kept_by_the_runner(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["scoring_cache_hit"] is True


def test_a_selection_refuses_another_dataset_and_a_dynamic_sampler(tmp_path):
    runner = CliRunner()
    assert (
        runner.invoke(app, ["score", *FAST, "importance=uniform", "--out", str(tmp_path / "s")]).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["select", str(tmp_path / "s"), "--sampler", "random", "--pruning-rate", "0.5"]
        ).exit_code
        == 0
    )
    (folder,) = (tmp_path / "s").glob("selection_*")
    selection = load_selection(folder)
    labels = np.load(tmp_path / "s" / "labels.npy")
    assert len(selection.subset(tensor_dataset(labels))) == 60
    with pytest.raises(InputError, match="120 samples; this one has 10"):
        selection.subset(tensor_dataset(labels[:10]))
    with pytest.raises(InputError, match="other labels"):
        selection.subset(tensor_dataset(labels[::-1].copy()))
    result = runner.invoke(app, ["select", str(tmp_path / "s"), "--sampler", "rs2", "--pruning-rate", "0.5"])
    assert result.exit_code == 2 and "chooses a new subset every epoch" in result.output
    result = runner.invoke(
        app, ["select", str(tmp_path / "missing"), "--sampler", "ccs", "--pruning-rate", "0.5"]
    )
    assert result.exit_code == 2 and "not a scores folder" in result.output


def test_a_proxy_scores_the_run_and_is_charged_by_its_flops(tmp_path):
    base = ["importance=aum", "sampler=ccs", "model.hidden=64", "model.depth=2"]
    target = train(fast_config(tmp_path, *base), tmp_path / "target")
    cfg = fast_config(tmp_path, *base, "scoring/model=mlp", "scoring.model.hidden=8", "scoring.model.depth=1")
    proxy = train(cfg, tmp_path / "proxy")
    assert proxy["scoring_cache_hit"] is False  # another model: another cache entry
    assert proxy["scoring_model"] == "mlp" and 0 < proxy["scoring_flops_ratio"] < 0.2
    recipe = build_recipe(cfg, torch.device("cpu"))
    assert target["scoring_flops_ratio"] == 1.0 and recipe.model.params["hidden"] == 64
    samples = proxy["num_train_samples"]
    assert proxy["scoring_samples"] == 3 * samples  # what the proxy trained
    assert proxy["scoring_cost_samples"] == round(3 * samples * proxy["scoring_flops_ratio"])  # what it cost
    assert proxy["compute_saved"] > target["compute_saved"]


def test_the_flop_counter_sees_a_wider_model_cost_more():
    data = compose_config(["model=cnn"])
    from datacull.datasets import ImageData

    images = ImageData(
        torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4) % 2, None, None, ["a", "b"]
    )
    narrow = build_recipe(compose_config(["model=cnn", "model.width=8"]), torch.device("cpu"))
    wide = build_recipe(data, torch.device("cpu"))
    ratio = narrow.flops_per_sample(images) / wide.flops_per_sample(images)
    assert 1 / 20 < ratio < 1 / 10  # convolutions scale with width squared: about 1/16
