"""Coresets you can take elsewhere: per-sample scores and selections as files any PyTorch code can load.

``datacull score`` runs (or reuses) a configuration's scoring run and writes its importance's scores;
``datacull select`` turns scores into the indices a static sampler keeps (and loss weights, if it gives any).
Both record the dataset's identity (size and a hash of its labels), so a selection is never applied to another
dataset by mistake. :func:`load_selection` reads one back: ``Subset(dataset, load_selection(path).indices)``.

Layout of a scores folder: ``scores.npy`` (float64, one per sample), ``labels.npy`` and ``scores.json``
(importance, direction, dataset identity, the scoring run, the configuration). A selection folder:
``indices.npy`` (int64, sorted), ``weights.npy`` when the sampler reweights, and ``selection.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .outputs import atomic_save_npy, atomic_write_json


def dataset_identity(labels: np.ndarray) -> dict[str, Any]:
    """What a selection must agree with: the number of samples and a hash of their labels, in order."""
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    return {"num_samples": int(labels.shape[0]), "labels_sha1": hashlib.sha1(labels.tobytes()).hexdigest()}


@dataclass
class ScoresFolder:
    """What ``datacull score`` wrote: the scores (an :class:`~datacull.ImportanceScores`, direction included),
    the labels they were computed on and ``scores.json``."""

    scores: Any
    labels: np.ndarray
    meta: dict[str, Any]


def write_scores(folder: Path, scores: Any, labels: np.ndarray, meta: dict[str, Any]) -> Path:
    folder = Path(folder)
    atomic_save_npy(folder / "scores.npy", np.asarray(scores, dtype=np.float64))
    atomic_save_npy(folder / "labels.npy", np.asarray(labels, dtype=np.int64))
    payload = {
        "higher_is_harder": getattr(scores, "higher_is_harder", None),
        "dataset": dataset_identity(labels),
        **meta,
    }
    atomic_write_json(folder / "scores.json", payload)
    return folder


def _read_folder(
    path: str | Path, kind: str, arrays: tuple[str, ...], command: str
) -> tuple[Path, dict, list]:
    """``kind.json`` and the ``arrays`` of a folder written by ``command`` (the folder, or the json in it)."""
    folder = Path(path)
    folder = folder.parent if folder.name == f"{kind}.json" else folder
    try:
        meta = json.loads((folder / f"{kind}.json").read_text())
        return folder, meta, [np.load(folder / f"{name}.npy") for name in arrays]
    except (OSError, ValueError) as error:
        raise InputError(
            f"{folder} is not a {kind} folder written by `datacull {command}` ({error})"
        ) from None


def read_scores(path: str | Path) -> ScoresFolder:
    """A scores folder (or its ``scores.json``) written by ``datacull score``."""
    from .importance import ImportanceScores

    folder, meta, (values, labels) = _read_folder(path, "scores", ("scores", "labels"), "score")
    if values.shape != labels.shape or dataset_identity(labels) != meta.get("dataset"):
        raise InputError(
            f"{folder}: scores.npy, labels.npy and scores.json disagree; score the dataset again"
        )
    return ScoresFolder(ImportanceScores(values, meta.get("higher_is_harder")), labels, meta)


@dataclass
class Selection:
    """The samples a sampler keeps: ``indices`` (sorted) and, for samplers that reweight, one loss weight each."""

    indices: np.ndarray
    weights: np.ndarray | None
    meta: dict[str, Any]

    def subset(self, dataset: Any):
        """``torch.utils.data.Subset`` of ``dataset`` with these indices, after checking it is the dataset that
        was scored (same size; same labels when it exposes them)."""
        from torch.utils.data import Subset

        from .data import discover_targets

        identity = self.meta["dataset"]
        if len(dataset) != identity["num_samples"]:
            raise InputError(
                f"the selection is for a dataset of {identity['num_samples']} samples; this one has {len(dataset)}"
            )
        try:
            labels = discover_targets(dataset)
        except InputError:
            labels = None
        if labels is not None and dataset_identity(labels) != identity:
            raise InputError("the selection was made for a dataset with other labels (labels_sha1 differs)")
        return Subset(dataset, self.indices.tolist())


def write_selection(folder: Path, indices: Any, weights: Any, meta: dict[str, Any]) -> Path:
    folder = Path(folder)
    order = np.argsort(np.asarray(indices))
    atomic_save_npy(folder / "indices.npy", np.asarray(indices, dtype=np.int64)[order])
    if weights is not None:
        atomic_save_npy(folder / "weights.npy", np.asarray(weights, dtype=np.float32)[order])
    atomic_write_json(folder / "selection.json", meta)
    return folder


def load_selection(path: str | Path) -> Selection:
    """A selection folder (or its ``selection.json``) written by ``datacull select``."""
    folder, meta, (indices,) = _read_folder(path, "selection", ("indices",), "select")
    weights = np.load(folder / "weights.npy") if (folder / "weights.npy").exists() else None
    return Selection(indices, weights, meta)


def select_into(scores: ScoresFolder, cfg: Any, out: Path) -> Selection:
    """Run the static sampler of ``cfg`` on ``scores`` (as the runner does on its first epoch) and write the
    selection into ``out``."""
    import torch
    from omegaconf import OmegaConf
    from torch.utils.data import TensorDataset

    from .catalog import get_sampler
    from .data import DCDataset
    from .parts import Budget, build_loader

    sampler_cls = get_sampler(cfg.sampler.name)
    labels = torch.from_numpy(np.ascontiguousarray(scores.labels, dtype=np.int64))
    dataset = DCDataset(
        TensorDataset(torch.zeros(labels.numel(), 0), labels)
    )  # samplers read the labels only
    loader = build_loader(cfg, sampler_cls, dataset, Budget(int(cfg.trainer.epochs)))
    if not loader.static:
        raise InputError(
            f"sampler={cfg.sampler.name} chooses a new subset every epoch; `datacull select` writes the subset of "
            "a static sampler (ccs, tdds, topk, random, metriq, full)"
        )
    if loader.needs_class_accuracy and loader.class_wise_acc is None:
        raise InputError(
            f"sampler={cfg.sampler.name} needs sampler.class_wise_acc=[...] to select from scores"
        )
    loader.set_epoch(0)
    indices = loader.resample(scores.scores if loader.reads_scores else None)
    weights = None if loader.sample_weights is None else loader.sample_weights[indices]
    meta = {
        "sampler": OmegaConf.to_container(cfg.sampler, resolve=True),
        "seed": int(cfg.seed),
        "kept": int(indices.numel()),
        "dataset": scores.meta["dataset"],
        "scores": {key: scores.meta.get(key) for key in ("importance", "higher_is_harder", "folder")},
    }
    write_selection(out, indices.numpy(), None if weights is None else weights.numpy(), meta)
    return load_selection(out)


def score_into(cfg: Any, out: Path) -> Path:
    """The scores of ``cfg``'s importance over its (cached) scoring run, written into ``out``."""
    from omegaconf import OmegaConf

    from .parts import build_parts

    parts = build_parts(cfg, Path(out), scores_only=True)
    parts.source.start()
    if parts.source.scores is None:
        raise InputError(f"importance={cfg.importance.name} gives no scores to write")
    meta = {
        "importance": cfg.importance.name,
        "dataset_name": cfg.dataset.name,
        "scoring": parts.source.scoring_cost.fields(),
        "folder": str(out),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    return write_scores(Path(out), parts.source.scores, parts.data.train_y.numpy(), meta)
