"""Writing files that other processes read: always through a temporary file and an atomic rename.

A run killed at any point leaves either the previous version of a file or the new one, never a torn one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np

from .summary import METRIC_COLUMNS, EpochRow, RunSummary


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give; mkstemp alone gives 0o600


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], durable: bool = True) -> Path:
    """Write through a temporary file renamed over ``path``. The rename alone makes a killed process leave the
    old file or the new one; ``durable`` also fsyncs, so an OS crash or power loss cannot leave a renamed but
    empty file either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(temporary, _FILE_MODE)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _atomic_write(path, lambda stream: stream.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, payload: Any) -> Path:
    return atomic_write_text(
        path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray, durable: bool = True) -> Path:
    return _atomic_write(path, lambda stream: np.save(stream, array, allow_pickle=False), durable)


def atomic_torch_save(path: str | os.PathLike, payload: Any) -> Path:
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_write_csv(path: str | os.PathLike, header: list[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, text.getvalue())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def capture_rng(device: Any) -> dict[str, Any]:
    """The global random generators' states: Python, numpy, torch, and the CUDA generator of ``device`` only (a
    run resumed with fewer GPUs visible must still find its own)."""
    import random

    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if getattr(device, "type", None) == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: Mapping[str, Any], device: Any) -> None:
    import random

    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and getattr(device, "type", None) == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


class RunFolder:
    """One run's output folder: ``config.yaml``, ``metrics.csv``, ``summary.json``, ``samples.csv``,
    ``checkpoint.pt`` (and Hydra's ``.hydra/`` and log file when started through Hydra)."""

    def __init__(self, path: Path, writable: bool = True):
        self.path = Path(path)
        self.writable = writable  # False on DDP ranks other than 0: they read the folder, never write it
        if writable:
            self.path.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    def refuse_existing_run(self) -> None:
        from .errors import InputError

        if not (self.summary_path.exists() or self.checkpoint_path.exists()):
            return
        try:
            completed = json.loads(self.summary_path.read_text()).get("status") == "completed"
        except (OSError, ValueError, AttributeError):
            completed = False
        if completed:
            raise InputError(f"{self.path} already holds a completed run; choose a new folder for this one")
        raise InputError(
            f"{self.path} already holds a run; continue it with `datacull resume {self.path}` or choose a new folder"
        )

    def write_config(self, cfg: Any) -> None:
        if not self.writable:
            return
        from omegaconf import OmegaConf

        atomic_write_text(self.path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    def write_summary(self, summary: RunSummary) -> None:
        if not self.writable:
            return
        atomic_write_json(self.summary_path, summary.to_json())

    def read_summary(self) -> RunSummary:
        return RunSummary.from_json(json.loads(self.summary_path.read_text()))

    def write_metrics(self, rows: list[EpochRow]) -> None:
        if not self.writable:
            return
        atomic_write_csv(self.path / "metrics.csv", METRIC_COLUMNS, [asdict(row) for row in rows])

    def write_samples(self, labels: np.ndarray, scores: np.ndarray, times_selected: np.ndarray) -> None:
        if not self.writable:
            return
        import pandas as pd

        table = pd.DataFrame(
            {
                "index": np.arange(labels.shape[0]),
                "label": labels,
                "final_score": scores,
                "times_selected": times_selected,
            }
        )
        atomic_write_text(self.path / "samples.csv", table.to_csv(index=False))

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        if not self.writable:
            return
        atomic_torch_save(self.checkpoint_path, dict(state))

    def load_checkpoint(self) -> dict[str, Any]:
        import torch

        from .errors import InputError

        if not self.checkpoint_path.exists():
            raise InputError(
                f"{self.path} has no checkpoint.pt: it is not a datacull run folder, or it stopped before its first epoch ended"
            )
        try:
            return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        except Exception as error:  # a damaged pickle can raise almost anything
            raise InputError(
                f"{self.checkpoint_path} cannot be read ({type(error).__name__}); the run cannot be resumed"
            ) from None
