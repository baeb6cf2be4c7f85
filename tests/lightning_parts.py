"""The Lightning pieces the Lightning tests and the DDP programs share: a recording module, a quiet Trainer and an
RCAP setup on sklearn's digits."""

from __future__ import annotations

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from datacull import DCDataset, DCLogger
from datacull.lightning import loss_weights

N = 1797  # sklearn digits


def digits_dataset() -> DCDataset:
    bunch = load_digits()
    return DCDataset(
        TensorDataset(torch.tensor(bunch.data, dtype=torch.float32) / 16, torch.tensor(bunch.target))
    )


class Recorder(L.LightningModule):
    """A linear classifier that records which samples each epoch trained, in order, and their loss weights."""

    def __init__(self, loader, per_sample=("loss",)):
        super().__init__()
        self.net = torch.nn.Linear(64, 10)
        self.loader = loader
        self.per_sample = per_sample
        self.trained: dict[int, list[torch.Tensor]] = {}
        self.weights: dict[int, list[torch.Tensor]] = {}
        self.subset_sizes: dict[int, int] = {}

    def on_train_epoch_start(self):
        if getattr(self.loader, "subset_indices", None) is not None:
            self.subset_sizes[self.current_epoch] = self.loader.subset_indices.numel()

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        logits = self.net(x)
        losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        weights = loss_weights(self.loader, index)
        self.trained.setdefault(self.current_epoch, []).append(index)
        self.weights.setdefault(self.current_epoch, []).append(weights)
        values = {"loss": losses, "logits": logits}
        return {"loss": (losses * weights).mean(), "per_sample": {k: values[k] for k in self.per_sample}}

    def train_dataloader(self):
        return self.loader

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

    def order(self, epoch: int) -> torch.Tensor:
        return torch.cat(self.trained[epoch])


def trainer(callback, epochs: int = 3, **kwargs):
    return L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        **kwargs,
    )


def rcap_setup(trajectory_dir, flush=False):
    from datacull.methods.RCAP import RCAPDataLoader, RCAPImportance

    dataset = digits_dataset()
    logger = DCLogger(trajectory_dir, num_samples=N)
    importance = RCAPImportance(dataset, logger_object=logger, beta=0.25, flush=flush)
    loader = RCAPDataLoader(dataset, pruning_rate=0.7, batch_size=128, seed=0)
    return loader, importance, logger
