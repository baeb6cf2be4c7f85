"""The training loop on its own: one pass over the order, per-sample weights and logging, batch augmentation,
evaluation, learning-rate progress and state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datacull import DCLogger
from datacull.datasets import ImageData
from datacull.engine import BatchAugment, Engine, Evaluation
from datacull.recipe import build_recipe

from .helpers import compose_config

CPU = torch.device("cpu")


def digits_like(count: int = 40, classes: int = 4) -> ImageData:
    """Learnable 8x8 grey images: each class lights up its own row."""
    labels = torch.arange(count) % classes
    images = torch.randint(
        0, 60, (count, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    images[torch.arange(count), 0, labels * 2] = 250
    return ImageData(images, labels, images[:8], labels[:8], classes=[str(c) for c in range(classes)])


def engine(
    *overrides: str, epochs: int = 4, steps: int | None = None, data: ImageData | None = None
) -> Engine:
    cfg = compose_config(["model.hidden=16", "model.depth=1", "trainer.batch_size=8", *overrides])
    return Engine(build_recipe(cfg, CPU), data or digits_like(), epochs=epochs, seed=0, steps=steps)


def test_an_epoch_trains_every_sample_of_the_order_once_and_logs_each():
    run = engine()
    order = torch.tensor([5, 3, 9, 0, 17, 22, 31, 2, 8, 1, 4])
    loggers = {name: DCLogger(f"/tmp/unused-{name}") for name in ("loss", "logits", "feature_norm")}
    stats = run.train_epoch(0, order, loggers=loggers)
    assert stats.samples == 11 and stats.steps == 2  # ceil(11 / 8)
    assert stats.trained[order].tolist() == [1] * 11 and int(stats.trained.sum()) == 11
    logged = {name: torch.cat(logger._indices).tolist() for name, logger in loggers.items()}
    assert all(sorted(indices) == sorted(order.tolist()) for indices in logged.values())
    assert loggers["logits"]._values[0].shape[1] == 4 and loggers["feature_norm"]._values[0].ndim == 1


def test_training_lowers_the_loss_on_learnable_data():
    run = engine("optimizer.lr=0.2", epochs=20)
    order = torch.arange(40)
    losses = [run.train_epoch(epoch, order).loss for epoch in range(20)]
    assert losses[-1] < 0.5 * losses[0]
    assert run.evaluate("test").accuracy > 0.8


def test_zero_loss_weights_leave_the_weights_unchanged():
    run = engine("optimizer.weight_decay=0.0")
    before = [parameter.detach().clone() for parameter in run.model.parameters()]
    run.train_epoch(0, torch.arange(40), weights=torch.zeros(40))
    assert all(torch.equal(a, b) for a, b in zip(before, run.model.parameters(), strict=True))


def test_the_learning_rate_follows_the_schedule_by_epochs_or_by_steps():
    by_epochs = engine(epochs=4)
    lrs = [by_epochs.train_epoch(epoch, torch.arange(40)).lr for epoch in range(4)]
    base = by_epochs.base_lrs[0]
    # 5 steps per epoch; the lr reported is the last step's: progress (epoch + 4/5) / 4
    expected = [base * 0.5 * (1 + math.cos(math.pi * (epoch + 0.8) / 4)) for epoch in range(4)]
    assert lrs == pytest.approx(expected)
    by_steps = engine(steps=7)
    first = by_steps.train_epoch(0, torch.arange(40))
    second = by_steps.train_epoch(1, torch.arange(40))
    assert (first.steps, second.steps, by_steps.global_step) == (5, 2, 7)  # the budget's 7 steps, no more
    assert second.lr == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * 6 / 7)))


def test_a_state_dict_round_trip_continues_exactly():
    straight = engine()
    for epoch in range(2):
        straight.train_epoch(epoch, torch.randperm(40, generator=torch.Generator().manual_seed(epoch)))
    first = engine()
    first.train_epoch(0, torch.randperm(40, generator=torch.Generator().manual_seed(0)))
    second = engine()
    second.load_state_dict(first.state_dict())
    second.train_epoch(1, torch.randperm(40, generator=torch.Generator().manual_seed(1)))
    for a, b in zip(straight.model.parameters(), second.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_evaluation_reports_nan_for_absent_classes_and_ignores_them_for_the_worst():
    data = digits_like()
    data.test_y = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1])  # classes 2 and 3 absent from the test split
    per_class = engine(data=data).evaluate("test").per_class
    assert math.isnan(per_class[2]) and math.isnan(per_class[3])
    assert Evaluation(0.5, [0.5, float("nan"), 0.25]).worst_class == 0.25


def test_batch_augmentation_crops_within_the_padding_and_flips_whole_images():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4) * 10
    augment = BatchAugment(1, True, torch.zeros(1), torch.ones(1), torch.Generator().manual_seed(0))
    offsets = torch.tensor([[1, 0], [1, 2]])  # image 0 not moved, image 1 shifted by (-1, +1)
    out = augment(images, {"offsets": offsets, "flips": torch.tensor([False, True])}) * 255
    torch.testing.assert_close(out[0], images[0].float())
    shifted = torch.nn.functional.pad(images[1].float(), (1, 1, 1, 1))[:, 0:4, 2:6]
    torch.testing.assert_close(out[1], shifted.flip(2))


def test_augmentation_draws_for_a_global_batch_split_like_one_process():
    """DDP ranks draw for the whole global batch and apply their slice: the same as one process."""
    images = torch.randint(0, 255, (6, 3, 8, 8), dtype=torch.uint8)
    draws = BatchAugment(2, True, torch.zeros(3), torch.ones(3), torch.Generator().manual_seed(3)).draw(6)
    augment = BatchAugment(2, True, torch.zeros(3), torch.ones(3), torch.Generator())
    whole = augment(images, draws)
    halves = [
        augment(images[part], {k: v[..., part] for k, v in draws.items()})
        for part in (slice(0, 3), slice(3, 6))
    ]
    torch.testing.assert_close(torch.cat(halves), whole)


def test_per_sample_metrics_are_named_once():
    from datacull.engine import PER_SAMPLE_METRICS
    from datacull.importance import DCImportance

    assert set(PER_SAMPLE_METRICS) == {"loss", "logits", "feature_norm"}
    assert set(DCImportance.requires) <= set(PER_SAMPLE_METRICS)
    assert np.isfinite(engine().train_epoch(0, torch.arange(8)).loss)
