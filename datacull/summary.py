"""What a run records, defined once: ``metrics.csv`` rows (:class:`EpochRow`) and ``summary.json``
(:class:`RunSummary`). The runner writes them, ``datacull resume`` continues them, ``datacull report`` reads them;
this module imports neither torch nor the methods, so the report starts quickly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

STATUSES = (
    "running",
    "completed",
    "failed",
    "interrupted",
)  # interrupted: Ctrl-C; `datacull resume` continues it


@dataclass
class EpochRow:
    """One line of ``metrics.csv``: an epoch's training statistics, its evaluation when due, and its timing."""

    epoch: int  # 1 for the first epoch, as the log counts them
    train_loss: float
    train_acc: float
    test_acc: float | None
    worst_class_acc: float | None
    subset_size: int  # the samples the epoch's pass offers (its subset)
    steps: int
    train_time_s: float
    eval_time_s: float
    epoch_time_s: float
    lr: float
    #: samples trained: the subset's size, unless a step budget ends the pass early (None in rows written before
    #: this column existed: then subset_size, which was the same under every budget they could have)
    samples_trained: int | None = None

    @property
    def trained(self) -> int:
        return self.subset_size if self.samples_trained is None else self.samples_trained


METRIC_COLUMNS = [column.name for column in fields(EpochRow)]
#: The columns that measure time: they differ between otherwise identical runs.
TIMING_COLUMNS = ("train_time_s", "eval_time_s", "epoch_time_s")


SCORING_PREFIX = "scoring_"


@dataclass(frozen=True)
class ScoringCost:
    """What a run's scoring run cost it: ``summary.json``'s ``scoring_*`` fields (also in checkpoints and in
    ``datacull score``'s ``scores.json``). The defaults are a run without one."""

    samples: int = 0  # trained by this run's process (0 on a cache hit)
    cost_samples: int = 0  # what the epochs it read cost, cached or not
    wall_time_s: float = 0.0  # this process's scoring time (0 on a cache hit)
    cost_s: float = 0.0  # what the epochs read took to train, cached or not
    cache_hit: bool = False
    epochs: int = 0
    schedule_epochs: int = 0
    model: str | None = None  # the scoring run's model (a proxy when not the model trained)
    flops_ratio: float | None = None  # its FLOPs per sample over the trained model's

    def fields(self) -> dict[str, Any]:
        """As written: every field under ``scoring_<name>``."""
        return {SCORING_PREFIX + key: value for key, value in asdict(self).items()}

    @classmethod
    def from_fields(cls, payload: dict[str, Any]) -> ScoringCost:
        return cls(
            **{
                column.name: payload[SCORING_PREFIX + column.name]
                for column in fields(cls)
                if SCORING_PREFIX + column.name in payload
            }
        )


def _result(default: Any = None) -> Any:
    """A field known only when the run completes (left out of ``summary.json`` until then)."""
    return field(default=default, metadata={"result": True})


@dataclass
class RunSummary:
    """``summary.json``. Identity fields are written when the run starts; results (left out until known) when it
    completes; ``status`` and ``error`` whenever it stops."""

    status: str
    importance: str
    sampler: str
    pruning_rate: float
    dataset: str
    model: str
    epochs: int
    steps: int | None
    seed: int
    run_dir: str
    world_size: int
    started_at: str
    uses_scores: bool = True  # False for samplers that ignore the importance (full, random, rs2, metriq)
    budget: str = "epochs"  # trainer.budget: epochs | equal_steps | compute (datacull.budget)
    compute_budget: float | None = None  # trainer.compute under budget=compute
    class_wise_acc: list[float] | None = _result()  # MetriQ's query-run class accuracies
    per_class_acc: list[float] | None = _result()
    test_acc: float | None = _result()
    best_test_acc: float | None = _result()
    worst_class_acc: float | None = _result()
    samples_trained: int | None = _result()
    scoring: ScoringCost | None = _result()  # written as the scoring_* fields
    full_data_samples: int | None = _result()
    realized_pruning_rate: float | None = _result()
    compute_saved: float | None = (
        _result()
    )  # 1 - (samples_trained + scoring_cost_samples) / full_data_samples
    num_train_samples: int | None = _result()
    epochs_trained: int | None = _result()
    steps_trained: int | None = _result()
    train_time_s: float | None = _result()
    eval_time_s: float | None = _result()
    device: str | None = _result()
    wall_time_s: float | None = _result()
    finished_at: str | None = _result()
    error: str | None = _result()
    warnings: list[str] | None = _result()  # legal but degenerate settings (datacull/checks.py), as logged
    #: code_identity() of the process that started the run, or resumed it last
    code: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The summary as written: results that are not known (None) are left out; ``scoring`` as its
        ``scoring_*`` fields."""
        optional = {column.name for column in fields(self) if column.metadata.get("result")}
        written: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "scoring":
                scoring = self.scoring.fields() if self.scoring is not None else {}
                written.update({name: field for name, field in scoring.items() if field is not None})
            elif value is not None or key not in optional:
                written[key] = value
        return written

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> RunSummary:
        known = {column.name for column in fields(cls)}
        values = {key: value for key, value in payload.items() if key in known}
        if any(key.startswith(SCORING_PREFIX) for key in payload):
            values["scoring"] = ScoringCost.from_fields(payload)
        return cls(**values)


#: The source folder of an editable install or a checkout (the package's parent); a wheel has none.
_CHECKOUT = Path(__file__).resolve().parents[1]


def code_identity() -> dict[str, Any]:
    """Which code produced a run: datacull's version, the git commit of the checkout it runs from (``dirty``
    when the package or its configs differ from that commit) and torch's version. A study's number can then be
    traced to the code that produced it, whatever worktree or machine ran it."""
    from . import __version__

    identity: dict[str, Any] = {"datacull": __version__, "commit": None, "dirty": None}
    torch = sys.modules.get(
        "torch"
    )  # its own version names the build (+cu130, +cpu); the report does not import it
    try:
        identity["torch"] = torch.__version__ if torch is not None else metadata.version("torch")
    except metadata.PackageNotFoundError:
        identity["torch"] = None
    if not (_CHECKOUT / ".git").exists():  # an installed wheel: its version is all there is
        return identity
    git = ["git", "-C", str(_CHECKOUT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", "datacull", "conf"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):  # no git on this machine: say nothing rather than guess
        return identity
    if commit.returncode == 0:
        identity["commit"] = commit.stdout.strip()
        identity["dirty"] = bool(changes.stdout.strip()) if changes.returncode == 0 else None
    return identity


#: What identifies a run among others (a completed summary lacking one is not averaged).
IDENTITY_FIELDS = ("dataset", "model", "epochs", "importance", "sampler", "pruning_rate", "seed")
#: The results a completed summary must hold to be averaged.
FINAL_FIELDS = (
    "test_acc",
    "best_test_acc",
    "worst_class_acc",
    "compute_saved",
    "realized_pruning_rate",
    "wall_time_s",
)


def unfinished_runs(folder: str | Path, since: float = 0.0) -> list[tuple[str, str]]:
    """``(run folder, reason)`` for every ``summary.json`` below ``folder`` written at or after ``since`` (a time
    stamp) that does not say completed: how a sweep names its failed jobs, whatever launcher ran them."""
    found = []
    for path in sorted(Path(folder).rglob("summary.json")):
        if path.stat().st_mtime < since:
            continue
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            summary = {"status": "failed", "error": f"summary.json cannot be read ({error})"}
        if summary.get("status") != "completed":
            reason = summary.get("error") or f"status {summary.get('status')!r} (the job did not finish)"
            found.append((str(path.parent), reason))
    return found
