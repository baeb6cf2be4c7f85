"""Models a user brings, imported by ``model._target_`` in the tests (the package is on the path under pytest)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Asks for the data set's input shape and classes by name; its final layer is ``classifier.2``."""

    def __init__(self, input_shape, num_classes, hidden: int = 16):
        super().__init__()
        channels, height, width = input_shape
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


class NoLinear(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(1, num_classes, 8)

    def forward(self, x):
        return self.conv(x).flatten(1)


class BagOfTokens(nn.Module):
    """A text classifier: the mean embedding of a sentence's real tokens (an ``nn.EmbeddingBag``), then a linear
    layer. Takes the padded token ids and their mask as keyword arguments."""

    def __init__(self, vocab_size: int, num_classes: int, dim: int = 16):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        weights = attention_mask.float() / attention_mask.sum(1, keepdim=True).clamp_min(1)
        return self.classifier(self.bag(input_ids, per_sample_weights=weights))


class TabularNet(nn.Module):
    """Rows of features in, class logits out: the size of a row comes from the data set (``input_shape``)."""

    def __init__(self, input_shape, num_classes, hidden: int = 32):
        super().__init__()
        (features,) = input_shape
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class FailsInForward(nn.Module):
    """A model whose forward raises when ``fail`` is set: an error from the user's own code, not from a setting."""

    def __init__(self, input_shape, num_classes, fail: bool = True):
        super().__init__()
        self.fail = fail
        self.linear = nn.Linear(int(torch.tensor(input_shape).prod()), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("the model's forward failed on purpose")
        return self.linear(x.flatten(1))
