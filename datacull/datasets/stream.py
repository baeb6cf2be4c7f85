"""Samples read a batch at a time by DataLoader workers: the streaming data path, for any map-style ``Dataset``.

:class:`StreamedSamples` stands where a resident tensor ``(N, *shape)`` stands: it has a length and a ``shape``,
indexing it with an index array gives the samples of that subset, and its ``signature`` identifies the data for
the scoring cache. The engine walks an epoch's batches through :func:`stream_batches`: worker processes read and
collate each batch ahead of training, pinned and copied asynchronously to the device. A training transform runs
on each input in the workers, seeded by the run's seed, the epoch and the sample, so that a sample's augmentation
is the same whatever the number of workers or ranks, and after a resume.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..errors import DatacullError, DataError

#: Batches each worker reads ahead of training.
PREFETCH_BATCHES = 4
_BITS_64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 over them): the same on every platform and Python version."""
    state = 0
    for value in values:
        state = (state + (int(value) & _BITS_64) + 0x9E3779B97F4A7C15) & _BITS_64
        state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _BITS_64
        state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & _BITS_64
        state ^= state >> 31
    return state >> 1


def default_workers() -> int:
    """Reading processes unless ``dataset.workers`` says: one per CPU core, at most 8."""
    return min(8, os.cpu_count() or 1)


def signature_of(*parts: Any) -> str:
    """A data set's identity for the scoring cache, from what describes it (import path, arguments, ...)."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def to_device(inputs: Any, device: torch.device) -> Any:
    """A batch's inputs (a tensor or a dict of tensors) on ``device``, copied asynchronously from pinned memory."""
    if isinstance(inputs, Mapping):
        return {key: to_device(value, device) for key, value in inputs.items()}
    return inputs.to(device, non_blocking=True) if isinstance(inputs, torch.Tensor) else inputs


class InputsOf:
    """Collates a batch of ``(input, label)`` items (``collate``: yours, or torch's default) and keeps the inputs:
    the labels come from the run's label vector, which the samplers read too."""

    def __init__(self, collate: Callable[[list], Any] | None = None):
        self.collate = collate or default_collate

    def __call__(self, items: list) -> Any:
        try:
            batch = self.collate(items)
        except RuntimeError:
            shapes = sorted({_shape(item[0]) for item in items}, key=str)
            if self.collate is not default_collate or len(shapes) < 2:
                raise
            raise DataError(
                f"the inputs of one batch differ in shape ({', '.join(map(str, shapes[:3]))}): resize images with "
                "dataset.image_size=[H,W], or pad sequences with a collate function (dataset.collate_fn=...)"
            ) from None
        if not isinstance(batch, tuple | list):
            raise DataError(
                f"the collate function returned a {type(batch).__name__}; datacull reads (inputs, labels) from it"
            )
        return batch[0]


def _shape(inputs: Any) -> Any:
    """An input's shape: a tensor's, or a dict of tensors' shapes by key."""
    if isinstance(inputs, Mapping):
        return tuple((key, _shape(value)) for key, value in sorted(inputs.items()))
    return tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__


class _Reader(Dataset):
    """What the workers run: item ``index`` of the data set, its input transformed under a seed of its own."""

    def __init__(self, dataset: Dataset, transform: Callable | None, seed: int | None):
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        if self.transform is None:
            return item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(self.seed, index))
            return (self.transform(item[0]), *item[1:])


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's training transforms (each sample's is derived from it and the sample's index)."""
    return mix_seed(seed, epoch)


class StreamedSamples:
    """``N`` samples of a map-style ``Dataset`` of ``(input, label)``, read on demand by DataLoader workers.

    ``signature`` identifies the data (a subset's is derived from it); ``collate`` batches the items (torch's
    default collate when None); ``workers`` reading processes (0: read in the training process)."""

    def __init__(
        self,
        dataset: Dataset,
        signature: str,
        collate: Callable[[list], Any] | None = None,
        workers: int | None = None,
    ):
        self.dataset = dataset
        self.index = np.arange(len(dataset), dtype=np.int64)
        self.signature = signature
        self.inputs_of = InputsOf(collate)
        self.workers = default_workers() if workers is None else int(workers)
        first = self.fetch([0]) if len(self.index) else None
        #: one input's shape (None when the inputs are dicts of tensors)
        self.sample_shape = tuple(first.shape[1:]) if isinstance(first, torch.Tensor) else None

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *(self.sample_shape or ())))

    def __getitem__(self, index: Any) -> StreamedSamples:
        """The samples of a subset (an index array or tensor), as another :class:`StreamedSamples`."""
        index = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).reshape(
            -1
        )
        subset = copy.copy(self)
        subset.index = self.index[index]
        subset.signature = hashlib.sha1((self.signature + index.tobytes().hex()).encode()).hexdigest()
        return subset

    def fetch(self, positions: Sequence[int]) -> Any:
        """The inputs of ``positions`` as one batch, read in this process, untransformed."""
        chosen = self.index[np.asarray(positions, dtype=np.int64)]
        return self.inputs_of([self.dataset[int(i)] for i in chosen])

    def load(self) -> torch.Tensor:
        """Every input read once by the workers into one resident tensor (for data that fits in memory)."""
        batches = list(torch.arange(len(self)).split(256))
        return torch.cat(list(stream_batches(self, batches, torch.device("cpu"))))


def stream_batches(
    samples: StreamedSamples,
    batches: list[torch.Tensor],
    device: torch.device,
    transform: Callable | None = None,
    seed: int | None = None,
) -> Iterator[Any]:
    """The inputs of each batch (positions in ``samples``), in order, read by ``samples.workers`` processes ahead
    of use, pinned and copied asynchronously to ``device``; ``transform`` applies to each input, seeded by
    ``seed`` (see :func:`epoch_seed`) and the sample."""
    order = [samples.index[batch.cpu().numpy()].tolist() for batch in batches]
    workers = samples.workers
    loader = DataLoader(
        _Reader(samples.dataset, transform, seed),
        batch_sampler=order,
        num_workers=workers,
        collate_fn=samples.inputs_of,
        pin_memory=device.type == "cuda",
        prefetch_factor=PREFETCH_BATCHES if workers else None,
    )
    try:
        for inputs in loader:
            yield to_device(inputs, device)
    except DatacullError as error:  # raised in a worker: its one line, not the worker's traceback
        lines = str(error).strip().splitlines()
        raise type(error)(lines[-1].split(": ", 1)[-1] if len(lines) > 1 else str(error)) from None
