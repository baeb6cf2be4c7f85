"""Code written for DataCull 1.0.2 runs here and means the same, or says why not (docs/coming-from-1.0.2.md).

Two things changed meaning under the same names, and both are handled here:

- **The rate.** 1.0.2's loaders keep ``ceil(pruning_rate · N)`` samples (its docs say "fraction to remove", its code
  keeps that fraction, and its notebooks pass ``1 - pruning_rate``). Here ``pruning_rate`` is the fraction
  removed. A loader of the original's names built from user code warns once per process unless
  ``DATACULL_PRUNING_RATE`` says which meaning to apply: ``kept`` (1.0.2's: the value is the fraction kept, and
  ``ceil`` of it is kept) or ``removed`` (this package's, quietly). The runner is never affected.
- **The trajectory format.** 1.0.2 writes ``epochN.jsonl``, one ``{"index": value}`` line per logged sample. A
  folder of them is converted once, epoch by epoch, into the native ``epochN.npy`` + ``epochN.seen.npy`` beside
  the originals (which stay), parsed in C by numpy rather than line by line; ``datacull convert`` does a whole
  folder ahead of time.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .errors import InputError, TrajectoryError

log = logging.getLogger("datacull")

RATE_VARIABLE = "DATACULL_PRUNING_RATE"
RATE_MEANINGS = ("kept", "removed")
#: The loaders 1.0.2 shipped under these names; a user's own subclass of DCDataLoader counts too.
ORIGINAL_LOADERS = frozenset(
    {"DCDataLoader", "CCSDataLoader", "TDDSDataLoader", "MetriQDataLoader", "RS2DataLoader", "RCAPDataLoader"}
)

_in_runner: contextvars.ContextVar[bool] = contextvars.ContextVar("datacull_in_runner", default=False)
_warned = False


class PruningRateMeaningWarning(UserWarning):
    """``pruning_rate`` given to a loader of DataCull 1.0.2's names without saying which meaning it has."""


def rate_meaning() -> str | None:
    """``DATACULL_PRUNING_RATE``: kept, removed, or None when unset; anything else is a one-line error."""
    value = os.environ.get(RATE_VARIABLE)
    if value is None or value == "":
        return None
    if value not in RATE_MEANINGS:
        raise InputError(
            f"{RATE_VARIABLE}={value!r} is not a meaning of pruning_rate: use kept (DataCull 1.0.2's: the fraction "
            "kept) or removed (this package's: the fraction removed)"
        )
    return value


@contextlib.contextmanager
def runner_rates():
    """Inside ``datacull train`` (and ``datacull select``): ``sampler.pruning_rate`` is always the fraction
    removed, whatever ``DATACULL_PRUNING_RATE`` says."""
    token = _in_runner.set(True)
    try:
        yield
    finally:
        _in_runner.reset(token)


def in_runner() -> bool:
    return _in_runner.get()


def is_original_loader(cls: type) -> bool:
    """A loader of the original's names: one of the six it shipped, or a subclass written outside datacull."""
    return cls.__name__ in ORIGINAL_LOADERS or not cls.__module__.startswith("datacull.")


def interpret_rate(cls: type, value: float, num_samples: int) -> tuple[float, int | None, str]:
    """``(fraction removed, kept count or None for the usual round((1 - p) N), meaning)`` of the ``pruning_rate``
    a loader of class ``cls`` was given; warns once per process when the meaning is not set."""
    global _warned
    if in_runner() or not is_original_loader(cls):
        return value, None, "removed"
    meaning = rate_meaning()
    if meaning is None:
        if not _warned and isinstance(value, int | float) and not isinstance(value, bool):
            _warned = (
                True  # (a value that is no number is refused by check_pruning_rate, with its own message)
            )
            warnings.warn(
                f"{cls.__name__}(pruning_rate={value:g}) removes {value:.0%} of the samples; DataCull 1.0.2 kept "
                f"{value:.0%} instead. Set {RATE_VARIABLE}=kept to read it as 1.0.2 did (the fraction kept), or "
                f"{RATE_VARIABLE}=removed to keep this meaning and silence this warning.",
                PruningRateMeaningWarning,
                stacklevel=4,
            )
        return value, None, "removed"
    if meaning == "removed":
        return value, None, "removed"
    kept = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")
    if not 0.0 < kept <= 1.0:
        raise InputError(
            f"pruning_rate must be in (0, 1] under {RATE_VARIABLE}=kept (the fraction kept, as DataCull 1.0.2 "
            f"read it); got {value}"
        )
    return 1.0 - kept, min(num_samples, math.ceil(kept * num_samples - 1e-9)), "kept"


def note_runner_ignores_rate_variable() -> None:
    """``datacull train`` with ``DATACULL_PRUNING_RATE`` set: say once that it does not apply there."""
    value = os.environ.get(RATE_VARIABLE)
    if value:
        log.info(
            "%s=%s is ignored by the runner: sampler.pruning_rate is always the fraction removed",
            RATE_VARIABLE,
            value,
        )


# ------------------------------------------------------------------------------------------ trajectories
LEGACY_FILE = re.compile(r"^epoch(\d+)\.jsonl$")
NATIVE_FILE = re.compile(r"^epoch(\d+)\.npy$")
#: Which epochs of a folder were converted from 1.0.2's files, with the size and modification time converted.
MARKER = ".converted-from-datacull-1.0.2.json"


def legacy_epochs(directory: Path) -> dict[int, Path]:
    """``{epoch: path}`` of the 1.0.2 ``epochN.jsonl`` files in ``directory``."""
    if not directory.is_dir():
        return {}
    found = ((LEGACY_FILE.match(entry.name), entry) for entry in os.scandir(directory))
    return {int(match.group(1)): Path(entry.path) for match, entry in found if match}


def parse_jsonl(path: Path, num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(values, seen)`` of one 1.0.2 epoch file: values ``(rows, *)`` float32, NaN where unseen.

    Every line is ``{"<index>": <number or list of numbers>}``; the file is parsed as one array by numpy (no
    Python loop over lines). A sample logged twice keeps its last line, as 1.0.2's reader did."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise TrajectoryError(f"cannot read {path}: {error}") from None
    lines = text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)
    if lines == 0:
        return np.zeros((0,), np.float32), np.zeros(0, dtype=bool)
    first = text.split(b"\n", 1)[0]
    width = first.count(b",") + first.count(b":") + 1  # the index, then the values
    flat = (
        text.translate(None, b'{}[]" \t\r').replace(b":", b",").replace(b"\n", b",").replace(b"null", b"nan")
    )
    try:
        numbers = np.array(flat.decode("ascii").strip(",").split(","), dtype=np.float64)
    except (UnicodeDecodeError, ValueError) as error:
        raise TrajectoryError(
            f'{path} is not a DataCull 1.0.2 trajectory file (one {{"index": value}} line per sample): {error}'
        ) from None
    if numbers.size != lines * width:
        raise TrajectoryError(
            f"{path}: its lines hold different numbers of values (the first holds {width - 1}); one metric per "
            "folder, with the same shape for every sample"
        )
    table = numbers.reshape(lines, width)
    raw = np.frombuffer(text.rstrip(b"\n"), dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    separators = np.cumsum((raw == ord(",")) | (raw == ord(":")))
    per_line = np.diff(np.concatenate([[0], separators[ends], [separators[-1]]]))
    if (per_line != width - 1).any():  # every line the same number of values, not only the total
        raise TrajectoryError(
            f"{path}: line {int(np.flatnonzero(per_line != width - 1)[0]) + 1} holds another number of values than "
            f"the first ({width - 1}); one metric per folder, with the same shape for every sample"
        )
    index = table[:, 0].astype(np.int64)
    if (index < 0).any() or (table[:, 0] != index).any():
        raise TrajectoryError(f"{path}: sample indices must be non-negative integers")
    rows = int(index.max()) + 1 if num_samples is None else num_samples
    if index.max() >= rows:
        raise TrajectoryError(
            f"{path} logs sample {int(index.max())} but the dataset has {rows}: was it logged for another dataset?"
        )
    _, last_from_end = np.unique(index[::-1], return_index=True)  # each index's last line
    keep = lines - 1 - last_from_end
    shape = (rows,) if width == 2 else (rows, width - 1)
    values = np.full(shape, np.nan, dtype=np.float32)
    values[index[keep]] = table[keep, 1] if width == 2 else table[keep, 1:]
    seen = np.zeros(rows, dtype=bool)
    seen[index[keep]] = True
    return values, seen


def _stamp(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def convert_folder(directory: str | os.PathLike, num_samples: int | None = None) -> list[int]:
    """Convert the 1.0.2 epochs of ``directory`` not converted yet into native files beside them; returns the
    epochs converted now. An epoch held in both formats that this did not convert is a one-line error."""
    directory = Path(directory)
    if not legacy_epochs(directory):
        return []
    from .scoring_run import file_lock

    with file_lock(
        directory / ".convert.lock"
    ):  # DDP ranks or parallel jobs reading one folder convert it once
        return _convert_locked(directory, num_samples)


def _convert_locked(directory: Path, num_samples: int | None) -> list[int]:
    from .logger import epoch_paths
    from .outputs import atomic_save_npy, atomic_write_json

    legacy = legacy_epochs(directory)
    marker_path = directory / MARKER
    try:
        marker = json.loads(marker_path.read_text()) if marker_path.exists() else {}
    except (OSError, ValueError):
        marker = {}
    converted = []
    for epoch, path in sorted(legacy.items()):
        stamp = _stamp(path)
        if marker.get(str(epoch)) == stamp:
            continue  # converted before (and maybe read and deleted since, by an importance with flush=True)
        values_path, seen_path = epoch_paths(directory, epoch)
        if values_path.exists() and str(epoch) not in marker:
            raise TrajectoryError(
                f"{directory} holds epoch {epoch} in both formats, {path.name} (DataCull 1.0.2) and "
                f"{values_path.name} (datacull): keep one of them"
            )
        values, seen = parse_jsonl(path, num_samples)
        atomic_save_npy(values_path, values, durable=False)
        atomic_save_npy(seen_path, seen, durable=False)
        marker[str(epoch)] = stamp
        atomic_write_json(marker_path, marker)  # epoch by epoch: an interrupted conversion resumes cleanly
        converted.append(epoch)
    if converted:
        log.info(
            "%s: converted DataCull 1.0.2 epochs %s (epochN.jsonl) to .npy beside them; the .jsonl files are kept",
            directory,
            _epoch_list(converted),
        )
    return converted


def converted_epochs(directory: str | os.PathLike) -> set[int]:
    """The epochs of ``directory`` that came from 1.0.2's files."""
    marker_path = Path(directory) / MARKER
    try:
        return (
            {int(epoch) for epoch in json.loads(marker_path.read_text())} if marker_path.exists() else set()
        )
    except (OSError, ValueError):
        return set()


def describe_unreadable(directory: str | os.PathLike) -> str:
    """Why a trajectory folder holds no readable epoch, for an error message: what it holds instead, or 1.0.2's
    files written beside it (its logger joined the folder and the file name without a '/')."""
    directory = Path(directory)
    if directory.is_dir():
        others = sorted(entry.name for entry in os.scandir(directory) if not entry.name.startswith("."))
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            return f"; it holds neither epochN.npy (datacull) nor epochN.jsonl (DataCull 1.0.2) files but {shown}"
    beside = (
        sorted(directory.parent.glob(f"{directory.name}epoch*.jsonl")) if directory.parent.is_dir() else []
    )
    if beside:
        return (
            f"; DataCull 1.0.2 wrote {beside[0].name} beside it (its logger needs a trailing '/' on the folder): "
            f"move those files into {directory}/ and rename them epochN.jsonl"
        )
    return ""


def _epoch_list(epochs: list[int]) -> str:
    if len(epochs) > 3 and epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"{epochs[0]}..{epochs[-1]}"
    return ", ".join(map(str, epochs))
