"""Data sets a user brings, imported by ``dataset._target_`` in the tests and the docs (the checkout is on the
path under pytest): token-id sequences made here, a table scikit-learn ships, and what goes with them."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from datacull.datasets.common import validation_split


class TokenSequences(Dataset):
    """Sentences of 4-12 token ids from a 60-token vocabulary, three classes: each class draws half of its tokens
    from ten words of its own, the rest from the whole vocabulary. Items are ``(token ids, label)``; sequences
    differ in length, so batches need :func:`pad_tokens`."""

    vocab_size = 60
    classes = ["sports", "politics", "science"]

    def __init__(self, train: bool, size: int = 96):
        generator = torch.Generator().manual_seed(0 if train else 1)
        count = size if train else size // 2
        self.targets = torch.arange(count) % 3
        lengths = torch.randint(4, 13, (count,), generator=generator)
        self.sequences = []
        for label, length in zip(self.targets.tolist(), lengths.tolist(), strict=True):
            own = 10 * label + torch.randint(0, 10, (length,), generator=generator)
            anything = torch.randint(0, self.vocab_size, (length,), generator=generator)
            pick = torch.rand(length, generator=generator) < 0.5
            self.sequences.append(torch.where(pick, own, anything))

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.sequences[index], int(self.targets[index])


def pad_tokens(items: list) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A collate function: sequences padded with 0 to the longest of the batch, and a mask of the real tokens."""
    sequences = [sequence for sequence, _ in items]
    ids = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
    lengths = torch.tensor([len(sequence) for sequence in sequences])
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    return {"input_ids": ids, "attention_mask": mask}, torch.tensor([label for _, label in items])


class BreastCancer(Dataset):
    """scikit-learn's breast cancer table (569 rows, 30 features, 2 classes): a fixed stratified 80/20 split, the
    features standardized by the training rows. ``targets=False`` hides the labels (they are read from the items)."""

    def __init__(self, train: bool, targets: bool = True):
        from sklearn.datasets import load_breast_cancer

        bunch = load_breast_cancer()
        labels = bunch.target.astype(np.int64)
        train_index, test_index = validation_split(labels, 0.2, seed=1234)
        features = torch.as_tensor(bunch.data, dtype=torch.float32)
        mean, std = features[train_index].mean(0), features[train_index].std(0)
        chosen = train_index if train else test_index
        self.features = (features[chosen] - mean) / std
        self.labels_ = torch.as_tensor(labels[chosen])
        self.classes = list(bunch.target_names)
        if targets:
            self.targets = self.labels_

    def __len__(self) -> int:
        return len(self.labels_)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.features[index], int(self.labels_[index])


class GaussianNoise:
    """A training transform: adds noise of standard deviation ``std`` to a feature vector."""

    def __init__(self, std: float = 0.1):
        self.std = std

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.std * torch.randn_like(features)


class Pairs(Dataset):
    """Items that are not ``(input, label)`` pairs: refused with one line."""

    def __init__(self, train: bool):
        pass

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.zeros(3)


class TrainOnly(Dataset):
    """A data set without torchvision's ``train=`` argument: its test split must be given by a target of its own."""

    def __init__(self, size: int = 8):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((4,), float(index)), index % 2
