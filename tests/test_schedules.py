"""Learning-rate schedules as functions of training progress, checked against their closed forms."""

from __future__ import annotations

import math

import pytest

from datacull.errors import InputError
from datacull.schedules import constant, cosine, linear, rs2_cosine, step


def test_cosine_runs_from_the_base_rate_to_its_floor():
    factor = cosine(epochs=100, min_lr_factor=0.1)
    assert factor(0.0) == pytest.approx(1.0) and factor(1.0) == pytest.approx(0.1)
    assert factor(0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    # the scoring run reads the start of a full-length run: 29 of 200 epochs is still near the peak
    assert cosine(epochs=200)(29 / 200) == pytest.approx(0.5 * (1 + math.cos(math.pi * 29 / 200))) and (
        cosine(epochs=200)(29 / 200) > 0.94
    )


def test_warmup_rises_linearly_then_the_body_takes_over():
    factor = cosine(epochs=10, warmup_epochs=2)
    assert factor(0.1) == pytest.approx(0.5, rel=1e-6)  # half-way through a 2-of-10-epoch warm-up
    assert factor(0.2) == pytest.approx(1.0, rel=1e-6)
    assert factor(0.6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)), rel=1e-6)
    assert constant(epochs=10, warmup_epochs=5)(0.25) == pytest.approx(0.5, rel=1e-6)


def test_step_multiplies_by_gamma_at_each_milestone_epoch():
    factor = step(epochs=200, milestones=[60, 120, 160], gamma=0.2)
    assert [factor(e / 200) for e in (0, 59, 60, 119, 120, 160, 199)] == pytest.approx(
        [1, 1, 0.2, 0.2, 0.04, 0.008, 0.008]
    )


def test_linear_decays_to_zero_after_its_warmup():
    factor = linear(epochs=10, warmup_epochs=1)
    assert factor(0.05) == pytest.approx(0.5, rel=1e-6) and factor(0.1) == pytest.approx(1.0, rel=1e-6)
    assert factor(0.55) == pytest.approx(0.5) and factor(1.0) == pytest.approx(0.0)


def test_rs2_cosine_is_a_cosine_one_epoch_late_from_the_base_rate():
    factor = rs2_cosine(epochs=10, min_lr_factor=0.001)
    peak = 2 / (1 + math.cos(math.pi / 10))  # 1.025: where the first epoch ends
    assert factor(0.0) == pytest.approx(1.0) and factor(0.1) == pytest.approx(0.001 + 0.999 * peak)
    assert max(factor(i / 1000) for i in range(1001)) == pytest.approx(factor(0.1))
    # one epoch short of the floor at the end: the cosine's value at 9 of 10 epochs, rescaled
    assert factor(1.0) == pytest.approx(
        0.001 + 0.999 * (1 + math.cos(0.9 * math.pi)) / (1 + math.cos(0.1 * math.pi))
    )
    with pytest.raises(InputError, match="epochs >= 2"):
        rs2_cosine(epochs=1)
