"""The fixed inputs of the parity records, rebuilt from seeds by the tests and by ``scripts/parity.py`` alike.

A synthetic training trajectory: N samples of C balanced classes, each learned at its own speed (a tenth never), so
margins, forgetting events and prediction changes all vary; every epoch presents the samples in its own order, as
a shuffled loader does. Logits are float32, as a training step logs them.
"""

from __future__ import annotations

from pathlib import Path

import torch

SEED = 0
NUM_SAMPLES = 500
NUM_CLASSES = 10
EPOCHS = 12
BATCH = 64  # the presentation batches of each epoch
RECORDS = Path(__file__).resolve().parent / "records"


def labels() -> torch.Tensor:
    """Balanced labels (50 per class) in a seeded order."""
    generator = torch.Generator().manual_seed(SEED)
    return (torch.arange(NUM_SAMPLES) % NUM_CLASSES)[torch.randperm(NUM_SAMPLES, generator=generator)]


def trajectory() -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (EPOCHS, N, C) float32, orders (EPOCHS, N))``: each epoch's logits by sample index, and the order in
    which that epoch presented the samples."""
    generator = torch.Generator().manual_seed(SEED + 1)
    y = labels()
    speed = torch.rand(NUM_SAMPLES, generator=generator) * 1.2
    speed[torch.randperm(NUM_SAMPLES, generator=generator)[: NUM_SAMPLES // 10]] = 0.0  # never learned
    noise = torch.randn(EPOCHS, NUM_SAMPLES, NUM_CLASSES, generator=generator) * 1.5
    epoch = torch.arange(EPOCHS, dtype=torch.float32)[:, None]
    logits = noise + (0.6 * epoch * speed)[..., None] * torch.nn.functional.one_hot(y, NUM_CLASSES)
    orders = torch.stack([torch.randperm(NUM_SAMPLES, generator=generator) for _ in range(EPOCHS)])
    return logits.float(), orders


def losses(epoch: int) -> torch.Tensor:
    """The cross-entropy of every sample in ``epoch`` (float32): the per-sample training loss a run logs."""
    logits, _ = trajectory()
    return torch.nn.functional.cross_entropy(logits[epoch], labels(), reduction="none")


def presentation_batches(epoch: int) -> list[torch.Tensor]:
    """The sample indices of each batch of ``epoch``, in order."""
    _, orders = trajectory()
    return list(orders[epoch].split(BATCH))


def spread_scores() -> torch.Tensor:
    """CCS's input: N float64 scores in [-1, 1] (an AUM-like probability margin), each at least 0.2 of a stratum
    width from every boundary of the 50 equal-width strata, whichever of the two bin ends (max, or the official
    1.0001 * max) is used; the lowest and highest score are exactly -1 and 1."""
    generator = torch.Generator().manual_seed(SEED + 2)
    width = 2.0 / 50
    skew = torch.rand(NUM_SAMPLES, generator=generator) ** 0.6  # more samples in the upper strata, as AUM
    stratum = (skew * 50).floor().clamp(0, 49)
    offset = 0.3 + 0.4 * torch.rand(NUM_SAMPLES, generator=generator)
    scores = -1.0 + (stratum.double() + offset.double()) * width
    scores[0], scores[1] = -1.0, 1.0
    return scores
