"""Scores in bounded memory and a reduced trajectory store: the same scores whichever store holds the scoring run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from datacull import DCDataset, DCLogger
from datacull.catalog import get_importance, list_importances
from datacull.errors import InputError
from datacull.runner import train

from .helpers import fast_config, tensor_dataset

REDUCIBLE = [name for name in list_importances() if get_importance(name).reducible]
assert {
    "aum",
    "el2n",
    "grand",
    "forgetting",
    "cartography",
    "entropy",
    "margin",
    "least_confidence",
    "tdds",
    "loss",
} <= set(REDUCIBLE)


def final_scores(run) -> np.ndarray:
    return pd.read_csv(run / "samples.csv")["final_score"].to_numpy()


@pytest.mark.parametrize("importance", REDUCIBLE)
def test_a_reduced_store_gives_the_scores_of_the_full_one(tmp_path, importance):
    common = [f"importance={importance}", "sampler=topk", "trainer.epochs=3", "scoring.epochs=3"]
    full = train(fast_config(tmp_path, *common, "trainer.store=full"), tmp_path / "full")
    reduced = train(fast_config(tmp_path, *common, "trainer.store=reduced"), tmp_path / "reduced")
    assert (
        full["scoring_cache_hit"] is False and reduced["scoring_cache_hit"] is False
    )  # entries of their own
    np.testing.assert_allclose(
        final_scores(tmp_path / "reduced"), final_scores(tmp_path / "full"), rtol=2e-6, atol=1e-7
    )
    sizes = sorted(
        sum(path.stat().st_size for path in entry.rglob("epoch*.npy"))
        for entry in (tmp_path / "cache" / "scoring").iterdir()
        if entry.is_dir()
    )
    assert sizes[0] * 3 <= sizes[1]  # a few numbers per sample and epoch instead of ten logits and the rest


def test_the_auto_store_reduces_past_its_limit_and_says_so(tmp_path, caplog):
    cfg = fast_config(tmp_path, "importance=aum", "sampler=ccs", "trainer.store_limit_gb=1e-6")
    with caplog.at_level("INFO", logger="datacull"):
        train(cfg, tmp_path / "run")
    assert "trajectory store: reduced (the full store would take" in caplog.text
    (logits,) = (tmp_path / "cache" / "scoring").glob("*/logits/epoch0.npy")
    assert np.load(logits).ndim == 1


def test_an_importance_that_cannot_read_a_reduced_store_says_so(tmp_path):
    with pytest.raises(InputError, match="importance=rcap cannot read a reduced store"):
        train(
            fast_config(tmp_path, "importance=rcap", "sampler=topk", "trainer.store=reduced"),
            tmp_path / "run",
        )


def test_a_reducing_logger_writes_what_the_importance_reads(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 30)
    dataset: DCDataset = tensor_dataset(labels)
    logits = torch.from_numpy(rng.normal(size=(5, 30, 4)).astype(np.float32))
    from datacull.methods.tdds import TDDSImportance

    plain = DCLogger(tmp_path / "plain", num_samples=30)
    reader = DCLogger(tmp_path / "reduced")
    reducing = TDDSImportance(dataset, 5, 3, 0.9, reader, reduced=True)
    writer = DCLogger(tmp_path / "reduced", num_samples=30, reducer=reducing.epoch_reducer())
    for epoch, values in enumerate(logits):
        order = torch.from_numpy(rng.permutation(30))[:25]  # a few samples skip each epoch
        for logger in (plain, writer):
            logger.log_metric(epoch, order, values[order])
            logger.flush()
    expected = TDDSImportance(dataset, 5, 3, 0.9, plain).compute_importance()
    np.testing.assert_allclose(reducing.compute_importance(), expected, rtol=1e-6)
    assert np.load(tmp_path / "reduced" / "epoch2.npy").shape == (30,)


def test_reduce_is_the_old_name_of_a_loggers_reducer(tmp_path):
    from datacull.methods.aum import AUMImportance

    importance = AUMImportance(tensor_dataset([0, 1] * 5), None, DCLogger(tmp_path / "read"), reduced=True)
    reducer = importance.epoch_reducer()
    with pytest.warns(FutureWarning, match="DCLogger: reduce= is the old name of reducer="):
        logger = DCLogger(tmp_path / "old", num_samples=10, reduce=reducer)
    assert logger.reducer is reducer
