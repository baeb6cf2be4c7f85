"""The runner in-process: every importance with every sampler, caching, accounting, outputs."""

from __future__ import annotations

import copy
import functools
import json
import subprocess

import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, open_dict

import datacull
from datacull import summary as summary_module
from datacull.catalog import get_sampler, list_importances, list_samplers
from datacull.runner import train
from datacull.sampling import kept_count

from .helpers import FAST, compose_config, fast_config, metrics_without_timing, shorten


@functools.cache
def _composed(override: str) -> DictConfig:
    return compose_config([*FAST, override])


def matrix_config(tmp_path, importance: str, sampler: str, cache_dir=None) -> DictConfig:
    """``importance=... sampler=...`` composed from each group's option composed once (Hydra's composition
    costs more than the run itself, and the matrix composes every pair)."""
    cfg = copy.deepcopy(_composed(f"importance={importance}"))
    with open_dict(cfg):
        cfg.sampler = copy.deepcopy(_composed(f"sampler={sampler}").sampler)
        cfg.sampler.pruning_rate = 0.5
        cfg.output_dir = str(tmp_path / "outputs")
        cfg.cache_dir = str(cache_dir or tmp_path / "cache")
    return shorten(cfg)


@pytest.fixture(scope="module")
def matrix_cache(tmp_path_factory):
    """One scoring cache for the whole matrix: every static cell reads the same scoring run (its key covers the
    data, recipe and seed, not the importance), trained once; the cache's own behaviour is tested below."""
    return tmp_path_factory.mktemp("matrix-cache")


#: Samplers that ignore the importance run with two of them (one that needs a scoring run, one that does not):
#: the other importances change nothing they do.
_BLIND = {name for name in list_samplers() if get_sampler(name).uses_scores is False}
MATRIX = [
    (importance, sampler)
    for importance in list_importances()
    for sampler in list_samplers()
    if sampler not in _BLIND or importance in ("uniform", "aum")
]


def test_the_matrix_composes_like_the_command_line(tmp_path):
    assert matrix_config(tmp_path, "tdds", "infobatch") == fast_config(
        tmp_path, "importance=tdds", "sampler=infobatch", "sampler.pruning_rate=0.5"
    )


@pytest.mark.parametrize("importance, sampler", MATRIX)
@pytest.mark.filterwarnings("ignore:sampler=full trains on every sample")
def test_every_importance_runs_with_every_sampler(tmp_path, matrix_cache, importance, sampler):
    cfg = matrix_config(tmp_path, importance, sampler, matrix_cache)
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test_acc"] <= 1.0 and len(summary["per_class_acc"]) == 10
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]  # counted from 1, as the log counts them
    trained = summary["num_train_samples"]
    expected = {"full": trained, "infobatch": None}.get(sampler, kept_count(trained, 0.5))
    sizes = metrics["subset_size"]
    assert (sizes == expected).all() if expected is not None else ((1 <= sizes) & (sizes <= trained)).all()
    assert summary["samples_trained"] == metrics["subset_size"].sum()
    if sampler in _BLIND:  # the importance is not even built: no scoring run but MetriQ's query run
        assert summary["uses_scores"] is False
        assert (summary["scoring_cost_samples"] > 0) == get_sampler(sampler).needs_class_accuracy
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (
        saved["status"] == "completed" and saved["importance"] == importance and saved["sampler"] == sampler
    )


def test_run_folder_is_complete(tmp_path):
    summary = train(fast_config(tmp_path), tmp_path / "run")
    names = {path.name for path in (tmp_path / "run").iterdir()}
    assert {"config.yaml", "metrics.csv", "summary.json", "samples.csv", "checkpoint.pt"} <= names
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    contract = (
        "epoch train_loss train_acc test_acc worst_class_acc subset_size steps train_time_s eval_time_s "
        "epoch_time_s lr samples_trained"
    ).split()
    assert list(metrics.columns) == contract
    samples = pd.read_csv(tmp_path / "run" / "samples.csv")
    assert list(samples.columns) == ["index", "label", "final_score", "times_selected"]
    assert samples["times_selected"].sum() == summary["samples_trained"]
    for key in (
        "status",
        "test_acc",
        "best_test_acc",
        "worst_class_acc",
        "per_class_acc",
        "pruning_rate",
        "importance",
        "sampler",
        "dataset",
        "model",
        "epochs",
        "seed",
        "samples_trained",
        "scoring_samples",
        "full_data_samples",
        "compute_saved",
        "wall_time_s",
        "scoring_wall_time_s",
    ):
        assert key in summary, key
    assert (
        summary["code"]["datacull"] == datacull.__version__ and summary["code"]["torch"] == torch.__version__
    )


def test_the_summary_names_the_commit_it_ran_from_and_whether_the_code_differed(tmp_path, monkeypatch):
    """A study's record must trace to its code: the commit of the checkout, and ``dirty`` once a file changed."""
    checkout = tmp_path / "checkout"
    (checkout / "datacull").mkdir(parents=True)
    (checkout / "datacull" / "a.py").write_text("x = 1\n")
    (checkout / "notes.txt").write_text("not code\n")
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "first"]):
        subprocess.run([*git, *command], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(summary_module, "_CHECKOUT", checkout)
    assert summary_module.code_identity()["commit"] == head
    assert summary_module.code_identity()["dirty"] is False
    (checkout / "notes.txt").write_text("an edit outside the package and its configs\n")
    assert summary_module.code_identity()["dirty"] is False
    (checkout / "datacull" / "a.py").write_text("x = 2\n")
    assert summary_module.code_identity()["dirty"] is True
    monkeypatch.setattr(summary_module, "_CHECKOUT", tmp_path / "an-installed-wheel")
    assert summary_module.code_identity()["commit"] is None


def test_static_method_scores_once_and_the_cache_serves_the_next_run(tmp_path):
    first = train(
        fast_config(tmp_path, "importance=aum", "sampler=ccs", "sampler.pruning_rate=0.5"), tmp_path / "a"
    )
    second = train(
        fast_config(tmp_path, "importance=tdds", "sampler=ccs", "sampler.pruning_rate=0.7"), tmp_path / "b"
    )
    samples = 120  # 12 per class, no validation split (nothing reads one)
    assert first["num_train_samples"] == samples
    assert first["scoring_cache_hit"] is False and first["scoring_samples"] == 3 * samples
    assert second["scoring_cache_hit"] is True and second["scoring_samples"] == 0
    assert second["scoring_cost_samples"] == 3 * samples
    # compute accounting charges the scoring run even when cached
    assert second["compute_saved"] == pytest.approx(
        1 - (second["samples_trained"] + 3 * samples) / (2 * samples)
    )


def test_damaged_cache_entry_is_recomputed_not_used(tmp_path):
    train(fast_config(tmp_path, "importance=aum", "sampler=tdds"), tmp_path / "a")
    damaged = next((tmp_path / "cache" / "scoring").glob("*/logits/epoch1.npy"))
    damaged.write_bytes(damaged.read_bytes()[:-7])
    summary = train(fast_config(tmp_path, "importance=aum", "sampler=tdds"), tmp_path / "b")
    assert summary["scoring_cache_hit"] is False


def test_different_seed_is_a_different_scoring_run(tmp_path):
    train(fast_config(tmp_path, "importance=aum", "sampler=tdds"), tmp_path / "a")
    assert (
        train(fast_config(tmp_path, "importance=aum", "sampler=tdds", "seed=1"), tmp_path / "b")[
            "scoring_cache_hit"
        ]
        is False
    )


def test_same_seed_same_result(tmp_path):
    first = train(fast_config(tmp_path, "importance=rcap", "sampler=rcap"), tmp_path / "a")
    second = train(fast_config(tmp_path, "importance=rcap", "sampler=rcap"), tmp_path / "b")
    a = metrics_without_timing(tmp_path / "a")
    b = metrics_without_timing(tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    assert first["test_acc"] == second["test_acc"]


def test_a_folder_holding_a_run_is_not_overwritten(tmp_path):
    from datacull.errors import InputError

    train(fast_config(tmp_path), tmp_path / "run")
    before = (tmp_path / "run" / "summary.json").read_text()
    with pytest.raises(InputError, match="already holds a completed run; choose a new folder"):
        train(fast_config(tmp_path), tmp_path / "run")
    assert (tmp_path / "run" / "summary.json").read_text() == before


def test_failure_is_recorded_in_the_summary(tmp_path):
    from datacull.errors import InputError

    with pytest.raises(InputError):
        train(
            fast_config(tmp_path, "sampler=ccs", "sampler.beta=0.9", "sampler.pruning_rate=0.5"),
            tmp_path / "run",
        )
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["status"] == "failed" and "beta" in saved["error"]


def test_metriq_reads_class_accuracy_from_the_validation_split(tmp_path):
    summary = train(fast_config(tmp_path, "sampler=metriq", "importance=aum"), tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(saved["class_wise_acc"]) == 10 and all(
        0.0 <= value <= 1.0 for value in saved["class_wise_acc"]
    )
    assert summary["scoring_samples"] > 0


def test_metriq_without_a_validation_split_says_how_to_fix_it(tmp_path):
    from datacull.errors import InputError

    with pytest.raises(InputError, match="dataset.val_fraction"):
        train(fast_config(tmp_path, "sampler=metriq", "dataset.val_fraction=0"), tmp_path / "run")


def test_progress_bars_on_request_and_log_lines_otherwise(tmp_path, capsys, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="datacull"):
        train(fast_config(tmp_path, "trainer.progress=bar"), tmp_path / "bar")
    assert "epochs: 100%" in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="datacull"):
        train(fast_config(tmp_path, "trainer.progress=log"), tmp_path / "log")
    assert "epochs:" not in capsys.readouterr().err
    assert any("epoch 2/2" in record.getMessage() for record in caplog.records)


def test_infobatch_on_digits_shrinks_the_subset_while_pruning_then_anneals_on_all_data(tmp_path):
    overrides = ["dataset.subset_per_class=50", "trainer.epochs=8", "model.hidden=32", "model.depth=1"]
    cfg = compose_config(["sampler=infobatch", "sampler.delta=0.75", *overrides], tmp_path)
    summary = train(cfg, tmp_path / "run")
    assert summary["importance"] == "loss"  # the importance InfoBatch is defined on, chosen by the sampler
    sizes = pd.read_csv(tmp_path / "run" / "metrics.csv")["subset_size"].tolist()
    everything = summary["num_train_samples"]
    # epoch 0: all losses start equal, nothing is below the mean; epochs 1-5 prune (6 <= .75 * 8); 6-7 anneal
    assert sizes[0] == everything
    assert all(size < everything for size in sizes[1:6]), sizes
    assert sizes[6:] == [everything, everything]
    assert summary["samples_trained"] == sum(sizes) and 0 < summary["realized_pruning_rate"] < 0.5


def test_per_class_accuracies_are_exact_fractions(tmp_path):
    summary = train(fast_config(tmp_path), tmp_path / "run")
    counts = [10] * 10  # dataset.test_subset_per_class=10
    for accuracy, count in zip(summary["per_class_acc"], counts, strict=True):
        assert accuracy * count == pytest.approx(round(accuracy * count), abs=1e-12)
        assert accuracy == round(accuracy * count) / count  # no float32 noise such as 0.7777777910232544


def test_resume_refuses_a_config_edited_since_its_checkpoint(tmp_path):
    import yaml

    from datacull.errors import InputError
    from datacull.runner import resume

    run = tmp_path / "run"
    train(fast_config(tmp_path, "sampler=random", "importance=uniform"), run)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # as if killed
    config = yaml.safe_load((run / "config.yaml").read_text())
    edited = {**config, "sampler": {**config["sampler"], "pruning_rate": 0.3}}
    edited["optimizer"] = {**config["optimizer"], "lr": 0.5}
    (run / "config.yaml").write_text(yaml.safe_dump(edited))
    with pytest.raises(InputError) as error:
        resume(run)
    message = str(error.value)
    assert "differs from the settings its checkpoint was written under" in message and "\n" not in message
    assert (
        f"optimizer.lr {config['optimizer']['lr']!r} -> 0.5" in message
        and "sampler.pruning_rate 0.5 -> 0.3" in message
    )
    # where files go and how progress shows may change: the original settings resume
    (run / "config.yaml").write_text(
        yaml.safe_dump({**config, "trainer": {**config["trainer"], "progress": "bar"}})
    )
    assert resume(run)["status"] == "completed"


def test_rs2_official_settings_train_whole_batches_and_are_charged_what_they_train(tmp_path):
    cfg = fast_config(
        tmp_path,
        "sampler=rs2",
        "importance=uniform",
        "sampler.official_rounding=true",
        "sampler.drop_last=true",
        "scheduler=rs2_cosine",
    )
    summary = train(cfg, tmp_path / "run")
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv")
    # 120 samples, p = 0.5: rounds of 60, of which batch 32 trains one whole batch, as the official loader
    assert rows["subset_size"].tolist() == [60, 60] and rows["samples_trained"].tolist() == [32, 32]
    assert rows["steps"].tolist() == [1, 1]
    assert summary["samples_trained"] == 64 and summary["compute_saved"] == pytest.approx(1 - 64 / 240)
    assert summary["realized_pruning_rate"] == pytest.approx(0.5)
    # the official schedule starts one epoch late: the second epoch's step runs above the base rate
    assert rows["lr"].iloc[1] > cfg.optimizer.lr


def test_drop_last_with_a_round_smaller_than_a_batch_is_refused(tmp_path):
    from datacull.errors import InputError

    cfg = fast_config(
        tmp_path, "sampler=rs2", "importance=uniform", "sampler.pruning_rate=0.9", "sampler.drop_last=true"
    )
    with pytest.raises(InputError, match="drop_last"):
        train(cfg, tmp_path / "run")
