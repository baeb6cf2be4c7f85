"""Property-based tests over every registered importance, degenerate trajectories included."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import open_dict

from datacull import DCLogger, ImportanceScores
from datacull.catalog import get_importance, list_importances
from datacull.parts import build_importance

from ..helpers import compose_config, tensor_dataset

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@functools.cache
def importance_config(name: str):
    return compose_config([f"importance={name}"])


@st.composite
def trajectories(draw):
    samples = draw(st.integers(1, 25))
    classes = draw(st.integers(2, 5))
    epochs = draw(st.integers(2, 6))
    one_class = draw(st.booleans())
    labels = (
        np.zeros(samples, dtype=int)
        if one_class
        else np.asarray(draw(st.lists(st.integers(0, classes - 1), min_size=samples, max_size=samples)))
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    kind = draw(st.sampled_from(["random", "constant", "extreme"]))
    logits = {
        "random": rng.normal(size=(epochs, samples, classes)) * 3,
        "constant": np.zeros((epochs, samples, classes)),
        "extreme": rng.choice([-60.0, 0.0, 60.0], size=(epochs, samples, classes)),
    }[kind]
    seen = rng.random((epochs, samples)) < draw(st.sampled_from([1.0, 0.7, 0.3]))
    return labels, logits.astype(np.float32), seen


def log_trajectory(directory, labels, logits, seen, shuffle_seed: int | None = None) -> dict[str, DCLogger]:
    """Log every metric an importance may read; with ``shuffle_seed``, in shuffled batches of three."""
    loggers = {
        name: DCLogger(directory / name, num_samples=len(labels))
        for name in ("logits", "loss", "feature_norm")
    }
    targets = torch.as_tensor(labels)
    generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
    for epoch, (epoch_logits, epoch_seen) in enumerate(zip(logits, seen, strict=True)):
        index = torch.nonzero(torch.as_tensor(epoch_seen)).squeeze(1)
        if generator is not None:
            index = index[torch.randperm(index.numel(), generator=generator)]
        for batch in index.tensor_split(3 if generator is not None else 1):
            if batch.numel() == 0:
                continue
            values = torch.as_tensor(epoch_logits)[batch]
            loggers["logits"].log_metric(epoch, batch, values)
            loss = torch.nn.functional.cross_entropy(values, targets[batch], reduction="none")
            loggers["loss"].log_metric(epoch, batch, loss)
            loggers["feature_norm"].log_metric(epoch, batch, values.abs().sum(1))
    for logger in loggers.values():
        logger.flush()
    return loggers


def build(name, labels, loggers, epochs):
    cfg = copy.deepcopy(importance_config(name))
    with open_dict(cfg):
        if "trajectory_length" in cfg.importance:
            cfg.importance.trajectory_length = epochs
        if "window_size" in cfg.importance:
            cfg.importance.window_size = min(int(cfg.importance.window_size), epochs)
    params = {key: value for key, value in cfg.importance.items() if key != "name"}
    importance = build_importance(get_importance(name), params, tensor_dataset(labels), loggers)
    importance.delete_read_epochs = False
    return importance


@pytest.mark.parametrize("name", list_importances())
@SETTINGS
@given(trajectory=trajectories())
def test_importance_properties(tmp_path_factory, name, trajectory):
    labels, logits, seen = trajectory
    seen[:, 0] = True  # trajectory importances need every epoch file; an epoch always trains someone
    loggers = log_trajectory(tmp_path_factory.mktemp(name), labels, logits, seen)
    epochs = logits.shape[0]
    scores = build(name, labels, loggers, epochs).compute_importance()
    assert isinstance(scores, ImportanceScores) and scores.shape == (len(labels),)
    assert np.isfinite(scores).all(), f"{name} gave non-finite scores"
    assert scores.higher_is_harder == get_importance(name).higher_is_harder
    again = build(name, labels, loggers, epochs).compute_importance()
    np.testing.assert_array_equal(scores, again)


@pytest.mark.parametrize("name", list_importances())
def test_importance_does_not_depend_on_batch_order(tmp_path, name):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 20)
    logits = rng.normal(size=(4, 20, 3)).astype(np.float32)
    seen = np.ones((4, 20), dtype=bool)
    first = build(name, labels, log_trajectory(tmp_path / "a", labels, logits, seen), 4).compute_importance()
    shuffled = log_trajectory(tmp_path / "b", labels, logits, seen, shuffle_seed=123)
    second = build(name, labels, shuffled, 4).compute_importance()
    np.testing.assert_allclose(first, second, rtol=1e-6)
