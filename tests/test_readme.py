"""The README's code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from datacull import DCLogger, registry

from .conftest import tensor_dataset

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_block(containing: str) -> str:
    return next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if containing in block)


def test_your_own_method_example_registers_and_works(tmp_path):
    namespace: dict = {}
    try:
        exec(python_block("@register_sampler"), namespace)
        assert registry.get_sampler("keep_first") is namespace["KeepFirst"]
        dataset = tensor_dataset([0, 1] * 5)
        logger = DCLogger(tmp_path)
        for epoch in range(2):
            logger.log_metric(epoch, torch.arange(10), torch.arange(10.0) * (epoch + 1))
        scores = namespace["LastLoss"](dataset, window_size=1, logger_object=logger).compute_importance()
        assert scores.tolist() == [2.0 * i for i in range(10)] and scores.higher_is_harder
        assert namespace["KeepFirst"](dataset, pruning_rate=0.3).resample(scores).tolist() == list(range(7))
    finally:
        registry._REGISTRY["sampler"].pop("keep_first", None)
        registry._REGISTRY["importance"].pop("last_loss", None)


def test_lightning_example_trains_on_resampled_subsets(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)  # the example writes trajectories/, lightning_logs/ and a checkpoint here
    namespace: dict = {}
    exec(python_block("DataCullCallback(loader, importance)"), namespace)
    loader, importance = namespace["loader"], namespace["importance"]
    assert namespace["trainer"].current_epoch == 3
    assert loader.num_resamples == 3 and loader.subset_indices.numel() == loader.required_num_samples
    assert importance.last_epoch_read == 1  # the resample before epoch 2 read the losses of epochs 0 and 1
    assert importance.logger.saved_epochs() == [2]  # RCAP deletes the epochs it has read
    (checkpoint,) = (tmp_path / "lightning_logs").rglob("*.ckpt")
    state = torch.load(checkpoint, weights_only=True)["callbacks"]["DataCullCallback"]
    assert torch.equal(state["loader"]["subset_indices"], loader.subset_indices)
