"""Shared fixtures: tiny datasets, configs composed into temporary folders, sampler construction by name."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import TensorDataset

from datacull import DCDataset
from datacull.paths import config_dir
from datacull.registry import get_sampler
from datacull.runner import build_sampler

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR10 = REPO.parent / "shared" / "data" / "cifar10"


def compose_config(overrides: list[str] | None = None, tmp_path: Path | None = None) -> DictConfig:
    """The runner's config as ``datacull train`` would compose it, with outputs and caches under ``tmp_path``."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides or []))
    if tmp_path is not None:
        with open_dict(cfg):
            cfg.output_dir = str(tmp_path / "outputs")
            cfg.cache_dir = str(tmp_path / "cache")
    return cfg


def tensor_dataset(labels, features: int = 3, seed: int = 0) -> DCDataset:
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    x = torch.randn(labels.numel(), features, generator=torch.Generator().manual_seed(seed))
    return DCDataset(TensorDataset(x, labels))


@functools.cache
def _sampler_config(name: str) -> DictConfig:
    return compose_config([f"sampler={name}"])


def make_sampler(name: str, dataset: DCDataset, pruning_rate: float, seed: int = 0, **overrides):
    """Construct the registered sampler ``name`` from its conf file, as the runner does."""
    cfg = copy.deepcopy(_sampler_config(name))
    with open_dict(cfg):
        cfg.seed = seed
        cfg.sampler.pruning_rate = pruning_rate
        for key, value in overrides.items():
            cfg.sampler[key] = value
    labels = dataset.targets
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    accuracy = np.linspace(0.2, 0.9, num_classes) if num_classes else np.zeros(0)
    return build_sampler(get_sampler(name), cfg, dataset, {"num_epochs": 10, "class_wise_acc": accuracy})


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Runs started by tests write under their own temporary folder, never into the checkout."""
    monkeypatch.setenv("DATACULL_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("DATACULL_CACHE_DIR", str(tmp_path / "cache"))
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def config_to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


#: metrics.csv columns that measure time: they differ between otherwise identical runs.
TIMING_COLUMNS = ["train_time_s", "eval_time_s", "epoch_time_s"]


def metrics_without_timing(run_dir: Path):
    """A run's metrics.csv without its timing columns, for comparing runs that must train identically."""
    import pandas as pd

    return pd.read_csv(Path(run_dir) / "metrics.csv").drop(columns=TIMING_COLUMNS)
