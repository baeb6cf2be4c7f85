"""``datacull report``: many run folders turned into one comparison table, mean ± std over seeds.

:func:`collect` reads every ``summary.json`` below some paths (single runs and sweeps alike), :func:`summarize`
groups the completed runs and compares each group with the full-data reference and with static random at the same
pruning rate, :func:`write_report` writes ``report.csv``, ``report_failed.csv``, ``report.md`` and ``report.png``
(accuracy against compute, the scoring run included). Runs that failed, are unfinished, cannot be read or repeat
another run's settings and seed are listed apart and never averaged in: a crashed seed must not pass for a good
result, and a re-run must not count twice.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError
from .outputs import atomic_write_bytes, atomic_write_text
from .summary import FINAL_FIELDS, IDENTITY_FIELDS

#: Runs are averaged together only when all of these (and their differing config settings) are equal.
GROUP_KEYS = ["dataset", "model", "epochs", "importance", "sampler", "pruning_rate", "settings"]
RUN_COLUMNS = [
    "run_dir",
    "status",
    "dataset",
    "model",
    "epochs",
    "importance",
    "sampler",
    "pruning_rate",
    "seed",
    "context",
    "settings",
    *FINAL_FIELDS,
    "train_time_s",
    "finished_at",
    "error",
]
FAILED_COLUMNS = [
    "status",
    "dataset",
    "model",
    "importance",
    "sampler",
    "pruning_rate",
    "seed",
    "run_dir",
    "error",
]
#: Config keys that never make runs incomparable (paths, display) or are columns of their own.
_IGNORED_KEYS = {
    "seed",
    "output_dir",
    "cache_dir",
    "trainer.progress",
    "trainer.num_threads",
    "trainer.tensorboard",
    "dataset.name",
    "model.name",
    "trainer.epochs",
    "importance.name",
    "sampler.name",
    "sampler.pruning_rate",
}
NO_IMPORTANCE = "-"


def find_summaries(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``summary.json`` at or below ``paths``, each once, in a stable order."""
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"{path} does not exist")
        candidates = [path] if path.is_file() else sorted(path.rglob("summary.json"))
        for candidate in candidates:
            found.setdefault(candidate.resolve(), None)
    if not found:
        raise InputError(f"no summary.json found below {', '.join(map(str, paths))}")
    return list(found)


def collect(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run found below ``paths`` (columns ``RUN_COLUMNS``); ``status`` is ``completed`` only for a
    finished run whose summary holds every final field, otherwise failed / running / incomplete / unreadable."""
    records = [_read_run(path) for path in find_summaries(paths)]
    runs = pd.DataFrame(records, columns=[*RUN_COLUMNS, "config"])
    _describe_settings(runs)
    _set_aside_repeats(runs)
    return runs.drop(columns="config")


def _set_aside_repeats(runs: pd.DataFrame) -> None:
    """Completed runs with the same settings and seed as another are re-runs: only the newest is averaged (a seed
    counted twice would shrink the spread to nothing); the others are listed as ``duplicate``."""
    completed = runs[runs["status"] == "completed"]
    if completed.empty:
        return
    identity = [*GROUP_KEYS, "context", "seed"]
    runs["error"] = runs["error"].astype(object)
    ordered = completed.assign(_finished=completed["finished_at"].astype("string").fillna("")).sort_values(
        ["_finished", "run_dir"]
    )
    newest = ordered.drop_duplicates(subset=identity, keep="last").set_index(identity)["run_dir"]
    for index, run in ordered[ordered.duplicated(subset=identity, keep="last")].iterrows():
        kept = newest.loc[tuple(run[key] for key in identity)]
        runs.loc[index, "status"] = "duplicate"
        runs.loc[index, "error"] = f"same settings and seed as {kept}, a newer run; only that one is averaged"


def _read_run(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"run_dir": str(path.parent), "config": {}}
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return {**record, "status": "unreadable", "error": f"{path.name} cannot be read: {error}"}
    record.update({key: summary.get(key) for key in RUN_COLUMNS if key in summary})
    uses_scores = summary.get("uses_scores", True)
    status = record["status"] = summary.get("status")
    if status == "completed":
        missing = [key for key in IDENTITY_FIELDS if summary.get(key) is None] + [
            key for key in FINAL_FIELDS if not isinstance(summary.get(key), int | float)
        ]
        if missing:
            record.update(status="incomplete", error=f"summary.json lacks {', '.join(missing)}")
    elif status in ("running", "interrupted"):
        how = "interrupted" if status == "interrupted" else "still running, or killed"
        record["error"] = f"unfinished: {how} (continue it with `datacull resume {path.parent}`)"
    elif status != "failed":
        record.update(status="unreadable", error=f"summary.json has no known status (got {status!r})")
    if record["status"] == "completed":
        record["config"] = _flat_config(path.parent / "config.yaml")
        if not uses_scores:
            record["importance"] = NO_IMPORTANCE
            record["config"] = {k: v for k, v in record["config"].items() if not k.startswith("importance.")}
        if record["sampler"] == "full":
            record["pruning_rate"] = 0.0  # full ignores the rate it is given (a sweep may pass one)
    return record


def _flat_config(path: Path) -> dict[str, str]:
    """The run's resolved config as ``{"optimizer.lr": "0.05", ...}``; empty when there is none."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = json.dumps(node) if isinstance(node, list) else str(node)

    walk(config if isinstance(config, dict) else {}, "")
    return {key: value for key, value in flat.items() if key not in _IGNORED_KEYS}


def _describe_settings(runs: pd.DataFrame) -> None:
    """Fill ``context`` and ``settings``: the config values that differ between completed runs, so that runs with
    another learning rate, batch size or method parameter are never averaged together.

    ``context`` holds what differs among all runs outside the method's own keys (``importance.*``, ``sampler.*``,
    ``scoring.*``: it decides which reference a run is compared with); ``settings`` adds the method's parameters
    that differ among the runs of the same importance and sampler (a key some runs lack differs too: a proxy's
    ``scoring.model.*``).
    """
    completed = runs[runs["status"] == "completed"]
    method_prefixes = ("importance.", "sampler.", "scoring.")

    def varying(configs: Iterable[dict[str, str]], method: bool) -> set[str]:
        configs = list(configs)
        keys = {key for config in configs for key in config if key.startswith(method_prefixes) == method}
        return {key for key in keys if len({config.get(key) for config in configs}) > 1}

    context_keys = varying(completed["config"], method=False)
    method_keys = {
        method: varying(group["config"], method=True)
        for method, group in completed.groupby(["importance", "sampler"])
    }
    runs["context"] = ""
    runs["settings"] = ""
    for index, run in completed.iterrows():
        config = run["config"]
        context = " ".join(f"{key}={config[key]}" for key in sorted(context_keys & config.keys()))
        own = method_keys[(run["importance"], run["sampler"])] & config.keys()
        method = " ".join(f"{key}={config[key]}" for key in sorted(own))
        runs.at[index, "context"] = context
        runs.at[index, "settings"] = " ".join(part for part in (context, method) if part)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Completed runs grouped by ``GROUP_KEYS``: mean and sample standard deviation (n − 1) over the seeds, and
    the difference to the full-data reference of the same dataset, model, epochs and context.

    The reference is the ``sampler=full`` runs of that context, or its runs with pruning rate 0 when there is no
    full run. ``delta_*`` is the mean over a group's runs of (run − reference), where the reference value is the
    reference run with the same seed when there is one (paired; ``paired_seeds`` counts them) and the reference's
    mean over its seeds otherwise.
    """
    done = runs[runs["status"] == "completed"].copy()
    if done.empty:
        return pd.DataFrame(columns=[*TABLE_COLUMNS, "context"])
    for column in ("pruning_rate", *FINAL_FIELDS, "train_time_s"):
        done[column] = pd.to_numeric(done[column])
    done["compute"] = 1.0 - done["compute_saved"]
    for column in ("epochs", "seed"):
        done[column] = pd.to_numeric(done[column]).astype("Int64")
    context_keys = ["dataset", "model", "epochs", "context"]
    is_full = done["sampler"] == "full"
    has_full = is_full.groupby([done[key] for key in context_keys]).transform("any")
    done["reference"] = is_full | (~has_full & (done["pruning_rate"] == 0))
    for metric in ("test_acc", "worst_class_acc"):
        reference = done[done["reference"]]
        by_seed = reference.groupby([*context_keys, "seed"])[metric].mean().rename("ref_seed")
        overall = by_seed.groupby(context_keys).mean().rename("ref_mean")
        joined = done.join(by_seed, on=[*context_keys, "seed"]).join(overall, on=context_keys)
        done[f"delta_{metric}"] = joined[metric] - joined["ref_seed"].fillna(joined["ref_mean"])
        done["paired"] = joined["ref_seed"].notna()
    _compare_with_random(done, context_keys)
    grouped = done.groupby(GROUP_KEYS + ["context"], sort=True, dropna=False)
    table = grouped.agg(
        runs=("seed", "size"),
        seeds=("seed", lambda seeds: ",".join(str(seed) for seed in sorted(set(seeds)))),
        test_acc_mean=("test_acc", "mean"),
        test_acc_std=("test_acc", "std"),
        worst_class_acc_mean=("worst_class_acc", "mean"),
        worst_class_acc_std=("worst_class_acc", "std"),
        best_test_acc_mean=("best_test_acc", "mean"),
        delta_test_acc=("delta_test_acc", "mean"),
        delta_test_acc_std=("delta_test_acc", "std"),
        delta_worst_class_acc=("delta_worst_class_acc", "mean"),
        delta_worst_class_acc_std=("delta_worst_class_acc", "std"),
        paired_seeds=("paired", "sum"),
        delta_random_test_acc=("delta_random_test_acc", "mean"),
        delta_random_test_acc_std=("delta_random_test_acc", "std"),
        delta_random_worst_class_acc=("delta_random_worst_class_acc", "mean"),
        delta_random_worst_class_acc_std=("delta_random_worst_class_acc", "std"),
        compute_mean=("compute", "mean"),
        compute_std=("compute", "std"),
        compute_saved_mean=("compute_saved", "mean"),
        compute_saved_std=("compute_saved", "std"),
        realized_pruning_rate_mean=("realized_pruning_rate", "mean"),
        train_time_s_mean=("train_time_s", "mean"),
        wall_time_s_mean=("wall_time_s", "mean"),
        reference=("reference", "any"),
    ).reset_index()
    return table


def _compare_with_random(done: pd.DataFrame, context_keys: list[str]) -> None:
    """``delta_random_*``: each run minus static random (``sampler=random`` with its default settings) at the same
    pruning rate and context, paired by seed where that seed exists, else against random's mean; blank for runs
    whose realized pruning rate is not the configured one (InfoBatch)."""
    keys = [*context_keys, "pruning_rate"]
    random = done[(done["sampler"] == "random") & (done["settings"] == done["context"])]
    for metric in ("test_acc", "worst_class_acc"):
        by_seed = random.groupby([*keys, "seed"])[metric].mean().rename("random_seed")
        overall = by_seed.groupby(keys).mean().rename("random_mean")
        joined = done.join(by_seed, on=[*keys, "seed"]).join(overall, on=keys)
        delta = joined[metric] - joined["random_seed"].fillna(joined["random_mean"])
        # a run that prunes another share than it was configured for (InfoBatch) has no random at its rate
        at_its_rate = (done["realized_pruning_rate"] - done["pruning_rate"]).abs() <= 0.01
        done[f"delta_random_{metric}"] = delta.where(at_its_rate | done["reference"])


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that are not averaged: failed, unfinished, incomplete or unreadable, with their error."""
    return runs.loc[runs["status"] != "completed", FAILED_COLUMNS].reset_index(drop=True)


TABLE_COLUMNS = [
    "dataset",
    "model",
    "epochs",
    "importance",
    "sampler",
    "pruning_rate",
    "settings",
    "runs",
    "seeds",
    "test_acc_mean",
    "test_acc_std",
    "worst_class_acc_mean",
    "worst_class_acc_std",
    "best_test_acc_mean",
    "delta_test_acc",
    "delta_test_acc_std",
    "delta_worst_class_acc",
    "delta_worst_class_acc_std",
    "paired_seeds",
    "delta_random_test_acc",
    "delta_random_test_acc_std",
    "delta_random_worst_class_acc",
    "delta_random_worst_class_acc_std",
    "compute_mean",
    "compute_std",
    "compute_saved_mean",
    "compute_saved_std",
    "realized_pruning_rate_mean",
    "train_time_s_mean",
    "wall_time_s_mean",
    "reference",
]


def markdown(table: pd.DataFrame, failed: pd.DataFrame) -> str:
    """The table as Markdown (also what the command prints), footnotes for blank comparisons, the runs left out
    below it. ``best_test_acc`` stays in report.csv only: it is chosen on the test set."""
    rows = []
    show_settings = table["settings"].astype(bool).any()
    for _, row in table.iterrows():
        cells = {
            "dataset": row["dataset"],
            "model": row["model"],
            "epochs": str(row["epochs"]),
            "importance": row["importance"],
            "sampler": row["sampler"] + (" (ref)" if row["reference"] else ""),
            "pruning rate": f"{row['pruning_rate']:g}",
            "realized": f"{row['realized_pruning_rate_mean']:.3f}",
            "settings": row["settings"],
            "n": str(row["runs"]),
            "test acc": _pm(row["test_acc_mean"], row["test_acc_std"]),
            "worst-class acc": _pm(row["worst_class_acc_mean"], row["worst_class_acc_std"]),
            "Δ test vs full": _signed(row, "delta_test_acc", "¹"),
            "Δ worst vs full": _signed(row, "delta_worst_class_acc", "¹"),
            "Δ test vs random": _signed(row, "delta_random_test_acc", "" if row["reference"] else "²"),
            "Δ worst vs random": _signed(
                row, "delta_random_worst_class_acc", "" if row["reference"] else "²"
            ),
            "compute": _pm(row["compute_mean"], row["compute_std"], digits=3),
            "train time (s)": ""
            if math.isnan(row["train_time_s_mean"])
            else f"{row['train_time_s_mean']:.1f}",
        }
        if not show_settings:
            del cells["settings"]
        rows.append(cells)
    parts = [_pipe_table(rows) if rows else "No completed runs to average."]
    if rows:
        parts.append(
            "\ncompute: samples trained, the scoring run included, as a multiple of one full-data run under the "
            "same budget (1 − compute_saved); realized: the realized pruning rate of training alone."
        )
    if rows and (table["delta_test_acc"].isna() & ~table["reference"]).any():
        parts.append(
            "¹ blank: no full-data reference with the same dataset, model, epochs and settings; make one with "
            "`datacull train sampler=full` and those settings (the same seeds pair up)."
        )
    if rows and (table["delta_random_test_acc"].isna() & ~table["reference"]).any():
        parts.append(
            "² blank: no static random run (`sampler=random`) with the same settings at that pruning rate "
            "(InfoBatch's realized rate is its own)."
        )
    if len(failed):
        parts.append(f"\nNot averaged ({len(failed)} run(s) failed, unfinished or unreadable):\n")
        parts.append(
            _pipe_table(
                [
                    {
                        "status": row["status"],
                        "run": row["run_dir"],
                        "error": str(row["error"] or "").replace("|", "\\|"),
                    }
                    for _, row in failed.iterrows()
                ]
            )
        )
    return "\n".join(parts) + "\n"


def _pm(mean: float, std: float, digits: int = 4) -> str:
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _signed(row: pd.Series, column: str, blank_note: str = "") -> str:
    """A paired difference, mean ± std over the seeds (the std of the per-seed differences)."""
    value, spread = row[column], row[f"{column}_std"]
    if math.isnan(value):
        return blank_note
    return f"{value:+.4f}" if math.isnan(spread) or row["reference"] else f"{value:+.4f} ± {spread:.4f}"


def _pipe_table(rows: list[dict[str, str]]) -> str:
    headers = list(rows[0])
    widths = [max(len(header), *(len(row[header]) for row in rows)) for header in headers]
    lines = [
        "| " + " | ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(row[h].ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    return "\n".join(lines)


def write_report(table: pd.DataFrame, failed: pd.DataFrame, out_dir: str | Path) -> list[str]:
    """Write ``report.csv``, ``report_failed.csv``, ``report.md`` and ``report.png`` into ``out_dir``; returns
    one line per file written or skipped (matplotlib is optional: without it the plot is skipped)."""
    out_dir = Path(out_dir)
    notes = []
    atomic_write_text(out_dir / "report.csv", table[TABLE_COLUMNS].to_csv(index=False))
    atomic_write_text(out_dir / "report_failed.csv", failed.to_csv(index=False))
    atomic_write_text(out_dir / "report.md", "# datacull report\n\n" + markdown(table, failed))
    notes.append(f"wrote {out_dir / 'report.csv'}, report_failed.csv, report.md")
    if table.empty:
        notes.append("report.png skipped: no completed runs")
    else:
        try:
            atomic_write_bytes(out_dir / "report.png", plot(table))
            notes.append(f"wrote {out_dir / 'report.png'}")
        except ImportError:
            notes.append("report.png skipped: matplotlib is not installed (pip install 'datacull[report]')")
    return notes


def plot(table: pd.DataFrame) -> bytes:
    """PNG bytes: per dataset/model/epochs/context, test and worst-class accuracy against compute (samples trained,
    the scoring run included, as multiples of one full-data run), one line per method through its pruning rates
    with std error bars over seeds in both directions, the full-data reference as a horizontal line and band."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    contexts = list(table.groupby(["dataset", "model", "epochs", "context"], sort=True))
    figure, axes = plt.subplots(
        len(contexts), 2, figsize=(13, 5 * len(contexts)), squeeze=False, constrained_layout=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"] + ["#444444", "#bcbd22", "#17becf"]
    markers = "osD^v<>ph*X"
    for panels, ((dataset, model, epochs, context), rows) in zip(axes, contexts, strict=True):
        methods = rows[~rows["reference"]].groupby(["importance", "sampler", "settings"], sort=True)
        title = f"{dataset} · {model} · {epochs} epochs" + (f" · {context}" if context else "")
        for axis, metric, name in zip(
            panels, ("test_acc", "worst_class_acc"), ("test", "worst-class"), strict=True
        ):
            for _, ref in rows[rows["reference"]].iterrows():
                mean, std = ref[f"{metric}_mean"], ref[f"{metric}_std"]
                axis.axhline(mean, color="black", lw=1.2, label=f"full data ({mean:.3f})")
                if not math.isnan(std):
                    axis.axhspan(mean - std, mean + std, color="black", alpha=0.08, lw=0)
            for number, ((importance, sampler, settings), method) in enumerate(methods):
                method = method.sort_values("compute_mean")
                label = (sampler if importance == NO_IMPORTANCE else f"{importance}/{sampler}") + (
                    f" {settings[len(context) :].strip()}" if settings != context else ""
                )
                axis.errorbar(
                    method["compute_mean"],
                    method[f"{metric}_mean"],
                    xerr=method["compute_std"].fillna(0),
                    yerr=method[f"{metric}_std"].fillna(0),
                    color=colors[number % len(colors)],
                    marker=markers[number % len(markers)],
                    capsize=3,
                    label=label,
                )
                for _, point in method.iterrows():  # the pruning rate beside each point
                    axis.annotate(
                        f"{point['pruning_rate']:g}",
                        (point["compute_mean"], point[f"{metric}_mean"]),
                        textcoords="offset points",
                        xytext=(4, 4),
                        fontsize=7,
                        color=colors[number % len(colors)],
                    )
            axis.set(
                title=f"{title}\n{name} accuracy (mean ± std over seeds; labels: pruning rate)",
                xlabel="compute: samples trained incl. the scoring run (× one full-data run)",
                ylabel=f"{name} accuracy",
            )
            axis.axvline(1.0, color="grey", lw=0.8, ls=":")
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small", loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def report(paths: Iterable[str | Path], out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """collect → summarize → write: the table, the runs left out, and one note per file written."""
    runs = collect(paths)
    table = summarize(runs)
    failed = failed_runs(runs)
    return table, failed, write_report(table, failed, out_dir)
