"""Shared helpers (imported by the tests that use them; conftest.py holds only fixtures): tiny datasets, configs
composed into temporary folders, samplers built by name, the ``datacull`` command in a subprocess, image folders
and trajectories written for a test."""

from __future__ import annotations

import copy
import functools
import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from PIL import Image
from torch.utils.data import TensorDataset

from datacull import DCDataset, DCLogger
from datacull.catalog import get_sampler
from datacull.launch import datacull_command, run_datacull
from datacull.models.external import final_linear
from datacull.parts import Budget, build_loader
from datacull.paths import config_dir
from datacull.summary import TIMING_COLUMNS

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
        if get_sampler(name).needs_class_accuracy:
            labels = dataset.targets
            num_classes = int(labels.max()) + 1 if len(labels) else 0
            cfg.sampler.class_wise_acc = np.linspace(0.2, 0.9, num_classes).tolist() if num_classes else []
    return build_loader(cfg, get_sampler(name), dataset, Budget(epochs=10))


def metrics_without_timing(run_dir: Path):
    """A run's metrics.csv without its timing columns, for comparing runs that must train identically."""
    import pandas as pd

    return pd.read_csv(Path(run_dir) / "metrics.csv").drop(columns=list(TIMING_COLUMNS))


# -------------------------------------------------------------------------- the runner on a tiny digits subset
FAST = [
    "dataset.subset_per_class=12",
    "dataset.test_subset_per_class=10",
    "trainer.epochs=2",
    "trainer.batch_size=32",
    "model.hidden=32",
    "model.depth=1",
]


def shorten(cfg: DictConfig, given: frozenset[str] = frozenset()) -> DictConfig:
    """Three-epoch scoring runs (of a three-epoch schedule), two-epoch windows, unless the test sets them
    (``given`` keys)."""
    with open_dict(cfg):
        for key, short in (("trajectory_length", 3), ("window_size", 2)):
            if key in cfg.importance and f"importance.{key}" not in given:
                cfg.importance[key] = short
        if "scoring.epochs" not in given:
            cfg.scoring.epochs = 3
    return cfg


def fast_config(tmp_path, *overrides):
    given = frozenset(override.split("=", 1)[0] for override in overrides)
    return shorten(compose_config([*FAST, *overrides], tmp_path), given)


# --------------------------------------------------------------------------- the command, as a user runs it
CIFAR_SMOKE = [
    "dataset=imagefolder",
    f"dataset.root={SHARED_CIFAR10}",
    "dataset.subset_per_class=20",
    "dataset.test_subset_per_class=20",
    "model=cnn",
    "model.width=8",
    "trainer.epochs=2",
]
needs_cifar = pytest.mark.skipif(
    not (SHARED_CIFAR10 / "train").is_dir(), reason="../shared/data/cifar10 is not here"
)


def datacull(
    *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m datacull ARGS`` in ``cwd``, its outputs and cache there; ``env`` adds variables."""
    result = run_datacull(datacull_command(*args), outputs=cwd, env=env, timeout=300, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(
            f"datacull {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def run_dirs(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.rglob("summary.json"))


# -------------------------------------------------------------------------------- files written for a test
def write_image_folder(root: Path, broken: dict[str, bytes] | None = None) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(4):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    for relative, content in (broken or {}).items():
        (root / relative).write_bytes(content)
    return root


def image_folder_overrides(root: Path) -> list[str]:
    """A run on every image of a folder written by :func:`write_image_folder`."""
    return [
        "dataset=imagefolder",
        f"dataset.root={root}",
        "dataset.subset_per_class=null",
        "dataset.test_subset_per_class=null",
        "dataset.val_fraction=0",
    ]


def log_epochs(logger: DCLogger, trajectory) -> None:
    """Log a (T, N, *) trajectory, each epoch in two shuffled batches."""
    trajectory = torch.as_tensor(trajectory, dtype=torch.float32)
    for epoch, values in enumerate(trajectory):
        order = torch.randperm(values.shape[0])
        for batch in order.tensor_split(2):
            logger.log_metric(epoch, batch, values[batch])
    logger.flush()


def scoring_request(cfg: DictConfig, data, epochs: int, schedule_epochs: int, cache_dir: Path):
    """The scoring run of ``cfg`` on ``data`` reading ``epochs`` of a ``schedule_epochs``-long run, on the CPU."""
    from datacull.recipe import build_recipe
    from datacull.scoring_run import ScoringRequest

    recipe = build_recipe(cfg, torch.device("cpu"))
    return ScoringRequest(recipe, data, int(cfg.seed), epochs, schedule_epochs, Path(cache_dir))


def write_mnist(root, counts=(40, 20)) -> None:
    """MNIST's four idx files as torchvision reads them, with random 28x28 digits of ten classes."""
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in zip(("train", "t10k"), counts, strict=True):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes()
        )
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, count) + labels.tobytes()
        )


def save_token_dataset(folder) -> None:
    """TokenSequences as a Hugging Face DatasetDict on disk: padded input_ids, attention_mask, a ClassLabel."""
    datasets = pytest.importorskip("datasets")
    from .custom_data import TokenSequences, pad_tokens

    splits = {}
    for split, train_flag in (("train", True), ("test", False)):
        source = TokenSequences(train_flag)
        inputs, labels = pad_tokens([source[i] for i in range(len(source))])
        splits[split] = datasets.Dataset.from_dict(
            {**{key: value.tolist() for key, value in inputs.items()}, "label": labels.tolist()},
            features=datasets.Features(
                {
                    "input_ids": datasets.Sequence(datasets.Value("int64")),
                    "attention_mask": datasets.Sequence(datasets.Value("int64")),
                    "label": datasets.ClassLabel(names=TokenSequences.classes),
                }
            ),
        )
    datasets.DatasetDict(splits).save_to_disk(str(folder))


def embedding_and_logits(model: torch.nn.Module, images: torch.Tensor):
    """The input of the model's final linear layer (what gradient scores and fp32 logits read) and the output."""
    captured = {}

    def keep(module, inputs, output):  # returns None: the output stays the model's
        captured["x"] = inputs[0]

    head = final_linear(model)
    hook = head.register_forward_hook(keep)
    logits = model(images)
    hook.remove()
    return head, captured["x"], logits


# Report records: made-up run folders, and one line of a report table.


def write_run(root, name, config=None, **fields):
    """A run folder holding a completed summary (fields override the defaults) and optionally a config.yaml."""
    run = root / name
    run.mkdir(parents=True)
    summary = {
        "status": "completed",
        "dataset": "digits",
        "model": "mlp",
        "epochs": 2,
        "importance": "rcap",
        "sampler": "rcap",
        "pruning_rate": 0.5,
        "seed": 0,
        "test_acc": 0.5,
        "best_test_acc": 0.6,
        "worst_class_acc": 0.1,
        "compute_saved": 0.5,
        "realized_pruning_rate": 0.5,
        "wall_time_s": 1.0,
        **fields,
    }
    summary.setdefault("uses_scores", summary["sampler"] not in ("full", "random", "rs2", "metriq"))
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.yaml").write_text(yaml.safe_dump({} if config is None else config))
    return run


def row(table, **keys):
    selected = table
    for key, value in keys.items():
        selected = selected[selected[key] == value]
    assert len(selected) == 1, keys
    return selected.iloc[0]


#: docs/your-model-and-data.md, whose commands tests/test_docs_your_data.py runs and the README quotes.
YOUR_DATA_PAGE = REPO / "docs" / "your-model-and-data.md"


def your_data_commands() -> list[str]:
    """The walkthrough's commands (from "A table of your own" on); the model section's zoo commands need downloads
    and the README test runs its custom-model line."""
    import re

    section = YOUR_DATA_PAGE.read_text().split("## A table of your own", 1)[1]
    return re.findall(r"^datacull train .*$", section, re.M)
