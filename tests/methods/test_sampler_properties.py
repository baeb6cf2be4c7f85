"""Property-based tests over every registered sampler: exact counts, valid indices, reproducibility, quotas."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacull.catalog import get_sampler, list_samplers
from datacull.importance import ImportanceScores

from ..helpers import make_sampler, tensor_dataset

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
#: Samplers whose algorithm keeps a count other than round((1 - p) N) (documented in their docstrings).
VARIABLE_COUNT = {"infobatch", "full"}
#: The full sampler ignores the pruning rates drawn here, and says so.
pytestmark = pytest.mark.filterwarnings("ignore:sampler=full trains on every sample")


@st.composite
def problems(draw):
    num_samples = draw(st.integers(1, 60))
    num_classes = draw(st.integers(1, 5))
    labels = draw(st.lists(st.integers(0, num_classes - 1), min_size=num_samples, max_size=num_samples))
    pruning_rate = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 0.99]) | st.floats(0.0, 0.99))
    kind = draw(st.sampled_from(["random", "equal", "ties", "probabilities"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scores = {
        "random": rng.normal(size=num_samples),
        "equal": np.ones(num_samples),
        "ties": rng.integers(0, 3, num_samples).astype(float),
        "probabilities": rng.dirichlet(np.ones(num_samples)),
    }[kind]
    if kind != "probabilities":
        scores = scores - scores.min()  # non-negative, so probability samplers accept every case
    direction = draw(st.sampled_from([True, False, None]))
    return np.asarray(labels), pruning_rate, ImportanceScores(scores, direction)


def kept_target(num_samples: int, rate: float) -> int:
    return min(num_samples, max(1, int(np.floor((1 - rate) * num_samples + 0.5 + 1e-9))))


@pytest.mark.parametrize("name", list_samplers())
@SETTINGS
@given(problem=problems(), seed=st.integers(0, 1000))
def test_sampler_properties(name, problem, seed):
    labels, rate, scores = problem
    dataset = tensor_dataset(labels)
    sampler = make_sampler(name, dataset, rate, seed=seed)
    kept = sampler.resample(scores)
    assert kept.dtype == torch.int64 and kept.ndim == 1
    assert torch.unique(kept).numel() == kept.numel(), "indices repeat"
    assert kept.numel() == 0 or (0 <= int(kept.min()) and int(kept.max()) < labels.shape[0])
    if name not in VARIABLE_COUNT:
        assert kept.numel() == sampler.required_num_samples == kept_target(labels.shape[0], rate)
    again = make_sampler(name, tensor_dataset(labels), rate, seed=seed).resample(scores)
    assert torch.equal(kept, again), "same seed, different subset"
    kept_per_class = np.bincount(labels[kept.numpy()], minlength=labels.max() + 1)
    assert (kept_per_class <= np.bincount(labels)).all()
    quotas = getattr(sampler, "class_quotas", None)
    if quotas is not None:
        assert kept_per_class.tolist() == quotas().tolist()


@pytest.mark.parametrize("name", list_samplers())
def test_dynamic_samplers_choose_again_and_static_ones_do_not(name):
    labels = np.arange(200) % 4
    sampler = make_sampler(name, tensor_dataset(labels), 0.5, seed=0)
    rng = np.random.default_rng(0)
    first = sampler.resample(ImportanceScores(rng.dirichlet(np.ones(200)), True)).clone()
    second = sampler.resample(ImportanceScores(rng.dirichlet(np.ones(200)), True))  # the next epoch's scores
    static = get_sampler(name).static
    assert isinstance(static, bool) and sampler.static == static, f"{name} must declare static"
    assert torch.equal(first, second) == static


@pytest.mark.parametrize("name", list_samplers())
def test_state_dict_resumes_the_selection_exactly(name):
    labels = np.arange(60) % 3
    rng = np.random.default_rng(1)
    scores = [ImportanceScores(rng.dirichlet(np.ones(60)), True) for _ in range(3)]
    original = make_sampler(name, tensor_dataset(labels), 0.5, seed=4)
    for epoch in (0, 1):
        original.set_epoch(epoch)
        original.resample(scores[epoch])
    restored = make_sampler(name, tensor_dataset(labels), 0.5, seed=99)  # only the state can make it agree
    restored.load_state_dict(copy.deepcopy(original.state_dict()))
    for loader in (original, restored):
        loader.set_epoch(2)
    assert torch.equal(original.resample(scores[2]), restored.resample(scores[2]))
    assert (original.sample_weights is None and restored.sample_weights is None) or torch.equal(
        original.sample_weights, restored.sample_weights
    )
