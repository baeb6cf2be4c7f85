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

import numpy as np
import pandas as pd

from .deprecated import RENAMED_KEYS
from .errors import InputError
from .outputs import atomic_write_bytes, atomic_write_text
from .summary import FINAL_FIELDS, IDENTITY_FIELDS

#: Runs are averaged together only when all of these (and their differing config settings) are equal.
GROUP_KEYS = ["dataset", "model", "epochs", "budget", "importance", "sampler", "pruning_rate", "settings"]
#: What a reference, a frontier and a random comparison must share with a run: everything but the method.
CONTEXT_KEYS = ["dataset", "model", "epochs", "context"]
RUN_COLUMNS = [
    "run_dir",
    "status",
    "dataset",
    "model",
    "epochs",
    "budget",
    "importance",
    "sampler",
    "pruning_rate",
    "seed",
    "context",
    "settings",
    *FINAL_FIELDS,
    "train_time_s",
    "scoring_cost_s",
    "scoring_cost_samples",
    "full_data_samples",
    "finished_at",
    "code",
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
    "trainer.eval_every",  # when the test set is read changes nothing trained
    "trainer.eval_batch_size",
    "trainer.budget",  # a column of its own
    "trainer.compute",
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
    finished run whose summary holds every final field with a usable value and whose config.yaml can be read,
    otherwise failed / running / interrupted / incomplete / damaged / unreadable / duplicate."""
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
    # the folder is where the summary was found, not the run_dir it names (a copied folder keeps its old one)
    record.update({key: summary.get(key) for key in RUN_COLUMNS if key in summary and key != "run_dir"})
    record["budget"] = budget_label(summary)
    record["code"] = code_label(summary.get("code"))
    uses_scores = summary.get("uses_scores", True)
    status = record["status"] = summary.get("status")
    if status == "completed":
        missing = [key for key in IDENTITY_FIELDS if summary.get(key) is None] + [
            key for key in FINAL_FIELDS if summary.get(key) is None
        ]
        if missing:
            record.update(status="incomplete", error=f"summary.json lacks {', '.join(missing)}")
        elif damage := _damage(summary):
            record.update(status="damaged", error=f"summary.json {damage}")
    elif status in ("running", "interrupted"):
        how = "interrupted" if status == "interrupted" else "still running, or killed"
        record["error"] = f"unfinished: {how} (continue it with `datacull resume {path.parent}`)"
    elif status != "failed":
        record.update(status="unreadable", error=f"summary.json has no known status (got {status!r})")
    if record["status"] == "completed":
        try:
            record["config"] = _flat_config(path.parent / "config.yaml")
        except ValueError as error:  # without its settings a run cannot be matched with comparable runs
            return {**record, "status": "damaged", "error": str(error)}
        if not uses_scores:
            record["importance"] = NO_IMPORTANCE
            record["config"] = {k: v for k, v in record["config"].items() if not k.startswith("importance.")}
        if record["sampler"] == "full":
            record["pruning_rate"] = 0.0  # full ignores the rate it is given (a sweep may pass one)
    return record


def budget_label(summary: dict[str, Any]) -> str:
    """``epochs``, ``equal_steps`` or ``compute=<fraction>``: the budget a run trained under (summaries written
    before ``trainer.budget`` existed trained by epochs)."""
    kind = summary.get("budget") or "epochs"
    if kind != "compute":
        return str(kind)
    compute = summary.get("compute_budget")
    return f"compute={compute:g}" if isinstance(compute, int | float) else "compute=?"


def code_label(code: Any) -> str:
    """A run's code as the report names it: the commit's first 9 hex digits (``+dirty`` when the package or its
    configs differed from it), the version of a wheel, or ``unrecorded`` (summaries written before runs recorded it)."""
    if not isinstance(code, dict):
        return "unrecorded"
    if code.get("commit"):
        return str(code["commit"])[:9] + ("+dirty" if code.get("dirty") else "")
    return f"datacull {code.get('datacull', '?')}"


def _damage(summary: dict[str, Any]) -> str:
    """What makes a completed summary unusable (a value of the wrong type, NaN, out of range), or ''."""
    numbers = ("pruning_rate", *FINAL_FIELDS)
    for key in numbers:
        value = summary.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"has {key}={value!r}, not a finite number"
    for key in ("epochs", "seed"):
        if isinstance(summary.get(key), bool) or not isinstance(summary.get(key), int):
            return f"has {key}={summary.get(key)!r}, not an integer"
    for key in ("test_acc", "worst_class_acc", "best_test_acc", "pruning_rate"):
        if not 0.0 <= summary[key] <= 1.0:
            return f"has {key}={summary[key]!r}, outside [0, 1]"
    compute = summary.get("compute_budget")
    if summary.get("budget") == "compute" and (
        isinstance(compute, bool) or not isinstance(compute, int | float)
    ):
        return f"has budget='compute' but compute_budget={compute!r}, not a number"
    return ""


def _flat_config(path: Path) -> dict[str, str]:
    """The run's resolved config as ``{"optimizer.lr": "0.05", ...}``; ValueError naming the problem when it is
    missing or unreadable (the run's settings are then unknown)."""
    import yaml

    if not path.is_file():
        raise ValueError(f"{path.name} is missing: the settings the run trained under are unknown")
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"{path.name} cannot be read ({type(error).__name__}): the run's settings are unknown"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(f"{path.name} is not a mapping of settings: the run's settings are unknown")
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = json.dumps(node) if isinstance(node, list) else str(node)

    walk(config, "")
    for (
        old,
        new,
    ) in RENAMED_KEYS.items():  # a folder written under a setting's old name compares as the new one
        if old in flat:
            value = flat.pop(old)
            if (
                value != "None" or new not in flat
            ):  # a folder older than the new name: its null is the new one's
                flat[new] = value
    if flat.get("scoring.epochs") == flat.get("trainer.epochs"):  # the default: the run's own length
        flat.pop("scoring.epochs", None)
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

    # what differs matters only within a comparison: among the runs of one dataset and model (keys that differ
    # between data sets, such as dataset.root, would otherwise fill every row)
    comparisons = ["dataset", "model"]
    context_keys = {
        key: varying(group["config"], method=False)
        for key, group in completed.groupby(comparisons, dropna=False)
    }
    method_keys = {
        method: varying(group["config"], method=True)
        for method, group in completed.groupby([*comparisons, "importance", "sampler"], dropna=False)
    }
    runs["context"] = ""
    runs["settings"] = ""
    for index, run in completed.iterrows():
        config = run["config"]
        keys = context_keys[(run["dataset"], run["model"])]
        context = " ".join(f"{key}={config[key]}" for key in sorted(keys & config.keys()))
        own = method_keys[(run["dataset"], run["model"], run["importance"], run["sampler"])] & config.keys()
        method = " ".join(f"{key}={config[key]}" for key in sorted(own))
        runs.at[index, "context"] = context
        runs.at[index, "settings"] = " ".join(part for part in (context, method) if part)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Completed runs grouped by ``GROUP_KEYS``: mean and sample standard deviation (n − 1) over the seeds, and
    paired differences to the full-data reference, to static random at the same rate and budget, and to the
    frontier (full data trained for less) at the same compute.

    The reference is the ``sampler=full`` runs of the same dataset, model, epochs and context trained for the whole
    budget (not the frontier's shortened ones), or its runs with pruning rate 0 when there is no full run. Each
    ``delta_*`` is the mean over a group's runs of (run − comparison), where the comparison is the run of the same
    seed when there is one (paired; ``paired_seeds`` counts them for the reference) and the comparison's mean over
    its seeds otherwise; ``*_ci95`` is the half-width of the 95% t-interval of that mean, ``*_n`` its count.
    """
    done = runs[runs["status"] == "completed"].copy()
    if done.empty:
        return pd.DataFrame(columns=[*TABLE_COLUMNS, "context"])
    for column in ("pruning_rate", *FINAL_FIELDS, "train_time_s", "scoring_cost_s"):
        done[column] = pd.to_numeric(done[column])
    done["compute"] = 1.0 - done["compute_saved"]
    for column in ("epochs", "seed"):
        done[column] = pd.to_numeric(done[column]).astype("Int64")
    done["frontier"] = (done["sampler"] == "full") & done["budget"].str.startswith("compute")
    is_full = (done["sampler"] == "full") & ~done["frontier"]
    has_full = is_full.groupby([done[key] for key in CONTEXT_KEYS]).transform("any")
    shortened = done["budget"].str.startswith("compute")  # trained for less than the whole budget
    done["reference"] = is_full | (~has_full & (done["pruning_rate"] == 0) & ~shortened)
    for metric in ("test_acc", "worst_class_acc"):
        reference = done[done["reference"]]
        by_seed = reference.groupby([*CONTEXT_KEYS, "seed"])[metric].mean().rename("ref_seed")
        overall = by_seed.groupby(CONTEXT_KEYS).mean().rename("ref_mean")
        joined = done.join(by_seed, on=[*CONTEXT_KEYS, "seed"]).join(overall, on=CONTEXT_KEYS)
        done[f"delta_{metric}"] = joined[metric] - joined["ref_seed"].fillna(joined["ref_mean"])
        done["paired"] = joined["ref_seed"].notna()
    _compare_with_random(done)
    _compare_with_frontier(done)
    grouped = done.groupby(GROUP_KEYS + ["context"], sort=True, dropna=False)
    aggregations = {
        "runs": ("seed", "size"),
        "seeds": ("seed", lambda seeds: ",".join(str(seed) for seed in sorted(set(seeds)))),
        "code": ("code", lambda codes: ",".join(sorted(set(codes)))),
        "test_acc_mean": ("test_acc", "mean"),
        "test_acc_std": ("test_acc", "std"),
        "worst_class_acc_mean": ("worst_class_acc", "mean"),
        "worst_class_acc_std": ("worst_class_acc", "std"),
        "best_test_acc_mean": ("best_test_acc", "mean"),
        "paired_seeds": ("paired", "sum"),
        "frontier_paired_seeds": ("frontier_paired", "sum"),
        "compute_mean": ("compute", "mean"),
        "compute_std": ("compute", "std"),
        "compute_saved_mean": ("compute_saved", "mean"),
        "compute_saved_std": ("compute_saved", "std"),
        "realized_pruning_rate_mean": ("realized_pruning_rate", "mean"),
        "train_time_s_mean": ("train_time_s", "mean"),
        "scoring_cost_s_mean": ("scoring_cost_s", "mean"),
        "wall_time_s_mean": ("wall_time_s", "mean"),
        "reference": ("reference", "any"),
        "frontier": ("frontier", "any"),
    }
    for column in DELTA_COLUMNS:
        aggregations[column] = (column, "mean")
        aggregations[f"{column}_std"] = (column, "std")
        aggregations[f"{column}_n"] = (column, "count")
    table = grouped.agg(**aggregations).reset_index()
    for column in DELTA_COLUMNS:
        table[f"{column}_ci95"] = [
            t_halfwidth(std, n) for std, n in zip(table[f"{column}_std"], table[f"{column}_n"], strict=True)
        ]
    return table


#: The paired differences the table reports, each with ``_std``, ``_n`` and ``_ci95`` beside it.
DELTA_COLUMNS = [
    f"delta_{against}{metric}"
    for against in ("", "random_", "frontier_")
    for metric in ("test_acc", "worst_class_acc")
]


def t_halfwidth(std: float, n: int) -> float:
    """Half-width of the two-sided 95% t-interval of a mean of ``n`` values with sample std ``std`` (NaN below
    two values: one seed gives no interval)."""
    if n < 2 or math.isnan(std):
        return float("nan")
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n))


def _compare_with_random(done: pd.DataFrame) -> None:
    """``delta_random_*``: each run minus static random (``sampler=random`` with its default settings) at the same
    pruning rate, budget and context, paired by seed where that seed exists, else against random's mean; blank for
    runs whose realized pruning rate is not the configured one (InfoBatch)."""
    keys = [*CONTEXT_KEYS, "budget", "pruning_rate"]
    random = done[(done["sampler"] == "random") & (done["settings"] == done["context"])]
    for metric in ("test_acc", "worst_class_acc"):
        by_seed = random.groupby([*keys, "seed"])[metric].mean().rename("random_seed")
        overall = by_seed.groupby(keys).mean().rename("random_mean")
        joined = done.join(by_seed, on=[*keys, "seed"]).join(overall, on=keys)
        delta = joined[metric] - joined["random_seed"].fillna(joined["random_mean"])
        # a run that prunes another share than it was configured for (InfoBatch) has no random at its rate
        at_its_rate = (done["realized_pruning_rate"] - done["pruning_rate"]).abs() <= 0.01
        done[f"delta_random_{metric}"] = delta.where(at_its_rate | done["reference"])


def frontier_points(done: pd.DataFrame) -> pd.DataFrame:
    """The frontier of each context: full data at reduced compute budgets (``sampler=full trainer.budget=compute``)
    and the full-data reference at its own compute, one row per context, budget and seed."""
    points = done[done["frontier"] | (done["reference"] & (done["sampler"] == "full"))]
    return points.groupby([*CONTEXT_KEYS, "budget", "seed"], as_index=False)[
        ["compute", "test_acc", "worst_class_acc"]
    ].mean()


#: A compute this close (relatively) to the frontier's cheapest or dearest point reads that point: a frontier run
#: spends its budget to the nearest whole step, e.g. 0.1002 of a full run where a 90%-pruned run spends 0.1000.
FRONTIER_END_TOLERANCE = 0.01


def interpolate(points: pd.DataFrame, compute: float, metric: str) -> float:
    """``metric`` of a frontier at ``compute``, linear between its measured points; NaN outside their range (beyond
    :data:`FRONTIER_END_TOLERANCE` of its ends) or with fewer than two."""
    curve = points.groupby("compute")[metric].mean().sort_index()
    if len(curve) < 2:
        return float("nan")
    low, high = curve.index[0], curve.index[-1]
    if not low * (1 - FRONTIER_END_TOLERANCE) <= compute <= high * (1 + FRONTIER_END_TOLERANCE):
        return float("nan")
    return float(np.interp(compute, curve.index.to_numpy(), curve.to_numpy()))


def _compare_with_frontier(done: pd.DataFrame) -> None:
    """``delta_frontier_*``: each run minus the frontier of its context at the run's own compute (scoring included):
    the seed's own frontier where it spans that compute (``frontier_paired``), else the frontier of the means over
    seeds (each budget's mean compute and accuracy); blank outside the measured range, and for the frontier's own
    runs and the reference."""
    points = frontier_points(done)
    done["frontier_paired"] = False
    for metric in ("test_acc", "worst_class_acc"):
        done[f"delta_frontier_{metric}"] = float("nan")
    if points.empty:
        return
    contexts = {
        key: (frame, frame.groupby("budget")[["compute", "test_acc", "worst_class_acc"]].mean())
        for key, frame in points.groupby(CONTEXT_KEYS, dropna=False)
    }  # each context's points and the frontier of its means, computed once
    for index, run in done[~done["frontier"] & ~done["reference"]].iterrows():
        found = contexts.get(tuple(run[key] for key in CONTEXT_KEYS))
        if found is None:
            continue
        context, means = found
        own = context[context["seed"] == run["seed"]]
        for metric in ("test_acc", "worst_class_acc"):
            value = interpolate(own, run["compute"], metric)
            paired = not math.isnan(value)
            if not paired:
                value = interpolate(means, run["compute"], metric)
            done.at[index, f"delta_frontier_{metric}"] = run[metric] - value
            done.at[index, "frontier_paired"] = paired
    done["frontier_paired"] = done["frontier_paired"].astype(bool)


def time_to_accuracy(table: pd.DataFrame, margins: tuple[float, ...] = (0.005, 0.01)) -> pd.DataFrame:
    """For each method line (importance, sampler, settings and kind of budget) of each context: the least compute
    (scoring included) at which its mean test accuracy is within each margin of the full-data reference's mean,
    among the pruning rates and budgets that were run (NaN: none was), and where. The frontier is one line: full
    data at its reduced budgets and the reference itself."""
    rows = []
    lines = table[~table["reference"]].assign(kind=lambda frame: frame["budget"].str.split("=").str[0])
    references = table[table["reference"]].set_index(CONTEXT_KEYS)["test_acc_mean"]
    for keys, line in lines.groupby(
        [*CONTEXT_KEYS, "importance", "sampler", "settings", "kind"], dropna=False
    ):
        context = tuple(keys[: len(CONTEXT_KEYS)])
        if context not in references.index:
            continue
        reference = float(references.loc[context].mean())
        if line["frontier"].any():  # the frontier ends at the reference itself
            ref_rows = table[table["reference"] & (table["sampler"] == "full")]
            ref_rows = ref_rows[[tuple(r) == context for r in ref_rows[CONTEXT_KEYS].itertuples(index=False)]]
            line = pd.concat([line, ref_rows])
        line = line.sort_values("compute_mean")
        row = dict(zip([*CONTEXT_KEYS, "importance", "sampler", "settings", "budget"], keys, strict=True))
        row["method"] = method_label(line.iloc[0], frontier=bool(line["frontier"].any()))
        row["reference_test_acc"] = reference
        best = line.loc[line["test_acc_mean"].idxmax()]
        row["best_delta"] = best["test_acc_mean"] - reference
        row["best_at"] = _where(best)
        for margin in margins:
            reached = line[line["test_acc_mean"] >= reference - margin - 1e-12]
            name = f"within_{margin * 100:g}"
            row[f"{name}_compute"] = reached["compute_mean"].iloc[0] if len(reached) else float("nan")
            row[f"{name}_at"] = _where(reached.iloc[0]) if len(reached) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def method_label(row: pd.Series, frontier: bool = False) -> str:
    """How a method line is named in tables and plots: importance/sampler and its own settings."""
    if frontier:
        return "full data trained for less (frontier)"
    name = row["sampler"] if row["importance"] == NO_IMPORTANCE else f"{row['importance']}/{row['sampler']}"
    own = str(row["settings"])[len(str(row["context"])) :].strip()
    return f"{name} {own}".strip()


def _where(row: pd.Series) -> str:
    """A table row's place on its method's line: its pruning rate, or its budget for the frontier."""
    if row["sampler"] == "full":
        return "full data" if row["reference"] else str(row["budget"])
    kind = str(row["budget"])
    return f"p={row['pruning_rate']:g}" + ("" if kind == "epochs" else f", {kind}")


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that are not averaged: failed, unfinished, incomplete, damaged, unreadable or repeated, with their
    reason."""
    return runs.loc[runs["status"] != "completed", FAILED_COLUMNS].reset_index(drop=True)


TABLE_COLUMNS = [
    *GROUP_KEYS,
    "runs",
    "seeds",
    "test_acc_mean",
    "test_acc_std",
    "worst_class_acc_mean",
    "worst_class_acc_std",
    "best_test_acc_mean",
    *(f"{column}{suffix}" for column in DELTA_COLUMNS for suffix in ("", "_std", "_ci95", "_n")),
    "paired_seeds",
    "frontier_paired_seeds",
    "compute_mean",
    "compute_std",
    "compute_saved_mean",
    "compute_saved_std",
    "realized_pruning_rate_mean",
    "train_time_s_mean",
    "scoring_cost_s_mean",
    "wall_time_s_mean",
    "reference",
    "frontier",
    "code",
]


def markdown(table: pd.DataFrame, failed: pd.DataFrame) -> str:
    """The table as Markdown (also what the command prints), the time-to-accuracy table, footnotes for blank
    comparisons, the runs left out below it. ``best_test_acc`` stays in report.csv only: it is chosen on the test
    set. Δ cells are the paired mean ± the half-width of its 95% t-interval, with n."""
    rows = []
    show_settings = table["settings"].astype(bool).any()
    show_budget = (table["budget"] != "epochs").any()
    for _, row in table.iterrows():
        baseline = row["reference"] or row["frontier"]  # what the comparisons are made against
        cells = {
            "dataset": row["dataset"],
            "model": row["model"],
            "epochs": str(row["epochs"]),
            "budget": row["budget"],
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
            "Δ test vs random": _signed(row, "delta_random_test_acc", "" if baseline else "²"),
            "Δ worst vs random": _signed(row, "delta_random_worst_class_acc", "" if baseline else "²"),
            "Δ test vs frontier": _signed(row, "delta_frontier_test_acc", "" if baseline else "³"),
            "compute": _pm(row["compute_mean"], row["compute_std"], digits=3),
            "time (s) train + scoring": _seconds(row),
        }
        if not show_settings:
            del cells["settings"]
        if not show_budget:
            del cells["budget"]
        rows.append(cells)
    parts = [_pipe_table(rows) if rows else "No completed runs to average."]
    if rows:
        parts.append(
            "\ncompute: samples trained, the scoring run included, as a multiple of one full-data run of the same "
            "epochs (1 − compute_saved); realized: the realized pruning rate of training alone; Δ: the paired mean "
            "over seeds ± the half-width of its 95% t-interval (n: the differences averaged); an interval that "
            "includes 0 is a tie. time: training seconds + the scoring run's (cached or not)."
        )
        parts.append(f"code (report.csv names each line's): {code_counts(table)}.")
    if rows and (table["delta_test_acc"].isna() & ~table["reference"]).any():
        parts.append(
            "¹ blank: no full-data reference with the same dataset, model, epochs and settings; make one with "
            "`datacull train sampler=full` and those settings (the same seeds pair up)."
        )
    if rows and (table["delta_random_test_acc"].isna() & ~table["reference"] & ~table["frontier"]).any():
        parts.append(
            "² blank: no static random run (`sampler=random`) with the same settings and budget at that pruning "
            "rate (InfoBatch's realized rate is its own)."
        )
    if rows and (table["delta_frontier_test_acc"].isna() & ~table["reference"] & ~table["frontier"]).any():
        parts.append(
            "³ blank: the run's compute lies outside the frontier's measured range (full data trained for less: "
            "`datacull train -m sampler=full trainer.budget=compute trainer.compute=0.1,0.3,0.5,0.7`, with the "
            "full-data reference at 1.0); beyond 1.0 full data itself costs less."
        )
    if rows:
        parts.append("\n" + time_to_accuracy_markdown(time_to_accuracy(table)))
    if len(failed):
        parts.append(f"\nNot averaged ({len(failed)} run(s) failed, unfinished, damaged or repeated):\n")
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


def code_counts(table: pd.DataFrame) -> str:
    """The commits the averaged runs came from, with how many lines of the table read each: a table that mixes
    code shows it."""
    counts: dict[str, int] = {}
    for codes in table["code"]:
        for code in str(codes).split(","):
            counts[code] = counts.get(code, 0) + 1
    return ", ".join(
        f"{code} ({count} line{'s' if count > 1 else ''})" for code, count in sorted(counts.items())
    )


def time_to_accuracy_markdown(reached: pd.DataFrame) -> str:
    """The time-to-accuracy table: least compute within 0.5 and 1.0 points of full data, per method line."""
    if reached.empty:
        return "Time to accuracy: no full-data reference to measure against."
    rows = []
    show_context = reached["context"].astype(bool).any()
    for _, row in reached.iterrows():
        cells = {"method": row["method"], "budget": str(row["budget"])}
        if show_context:
            cells = {"context": row["context"], **cells}
        for margin in ("0.5", "1"):
            compute, where = row[f"within_{margin}_compute"], row[f"within_{margin}_at"]
            cells[f"within {margin} pt: compute"] = "—" if math.isnan(compute) else f"{compute:.3f} ({where})"
        cells["closest: Δ test"] = f"{row['best_delta'] * 100:+.2f} pt ({row['best_at']})"
        rows.append(cells)
    return (
        "Time to accuracy: the least compute (scoring included) at which a method's mean test accuracy is within "
        "0.5 / 1 point of the full-data reference's mean, among the rates and budgets run (—: none).\n\n"
        + _pipe_table(rows)
    )


def _seconds(row: pd.Series) -> str:
    train, scoring = row["train_time_s_mean"], row["scoring_cost_s_mean"]
    if math.isnan(train):
        return ""
    return f"{train:.1f}" if math.isnan(scoring) or scoring == 0 else f"{train:.1f} + {scoring:.1f}"


def _pm(mean: float, std: float, digits: int = 4) -> str:
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _signed(row: pd.Series, column: str, blank_note: str = "") -> str:
    """A paired difference: the mean over seeds ± the half-width of its 95% t-interval, and n."""
    value, interval, n = row[column], row[f"{column}_ci95"], row[f"{column}_n"]
    if math.isnan(value):
        return blank_note
    if row["reference"]:
        return f"{value:+.4f}"
    return f"{value:+.4f} (n={n})" if math.isnan(interval) else f"{value:+.4f} ± {interval:.4f} (n={n})"


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


def write_report(
    table: pd.DataFrame, failed: pd.DataFrame, out_dir: str | Path, curves: pd.DataFrame | None = None
) -> list[str]:
    """Write ``report.csv``, ``report_time_to_accuracy.csv``, ``report_failed.csv``, ``report.md``, ``report.png``
    and, when runs evaluated during training, ``report_curves.png`` into ``out_dir``; returns one line per file
    written or skipped (matplotlib is optional: without it the plots are skipped)."""
    out_dir = Path(out_dir)
    notes = []
    atomic_write_text(out_dir / "report.csv", table[TABLE_COLUMNS].to_csv(index=False))
    if not table.empty:
        atomic_write_text(
            out_dir / "report_time_to_accuracy.csv", time_to_accuracy(table).to_csv(index=False)
        )
    atomic_write_text(out_dir / "report_failed.csv", failed.to_csv(index=False))
    atomic_write_text(out_dir / "report.md", "# datacull report\n\n" + markdown(table, failed))
    notes.append(f"wrote {out_dir / 'report.csv'}, report_failed.csv, report.md")
    if table.empty:
        notes.append("report.png skipped: no completed runs")
    else:
        try:
            atomic_write_bytes(out_dir / "report.png", plot(table))
            notes.append(f"wrote {out_dir / 'report.png'}")
            picture = None if curves is None or curves.empty else plot_curves(curves, table)
            if picture is not None:  # None: only full-data curves, nothing to set beside them
                atomic_write_bytes(out_dir / "report_curves.png", picture)
                notes.append(f"wrote {out_dir / 'report_curves.png'}")
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
        len(contexts), 2, figsize=(18, 5 * len(contexts)), squeeze=False, constrained_layout=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"] + ["#444444", "#bcbd22", "#17becf"]
    markers = "osD^v<>ph*X"
    for panels, ((dataset, model, epochs, context), rows) in zip(axes, contexts, strict=True):
        rows = rows.assign(kind=rows["budget"].str.split("=").str[0])
        methods = rows[~rows["reference"] & ~rows["frontier"]].groupby(
            ["importance", "sampler", "settings", "kind"], sort=True
        )
        frontier = pd.concat([rows[rows["frontier"]], rows[rows["reference"] & (rows["sampler"] == "full")]])
        frontier = frontier.sort_values("compute_mean")
        title = f"{dataset} · {model} · {epochs} epochs" + (f" · {context}" if context else "")
        for axis, metric, name in zip(
            panels, ("test_acc", "worst_class_acc"), ("test", "worst-class"), strict=True
        ):
            for _, ref in rows[rows["reference"]].iterrows():
                mean, std = ref[f"{metric}_mean"], ref[f"{metric}_std"]
                axis.axhline(mean, color="black", lw=1.2, label=f"full data ({mean:.3f})")
                if not math.isnan(std):
                    axis.axhspan(mean - std, mean + std, color="black", alpha=0.08, lw=0)
            if rows["frontier"].any():  # full data trained for less: what every method is read against
                axis.errorbar(
                    frontier["compute_mean"],
                    frontier[f"{metric}_mean"],
                    yerr=frontier[f"{metric}_std"].fillna(0),
                    color="black",
                    ls="--",
                    marker="x",
                    capsize=3,
                    label="frontier: full data trained for less",
                )
            for number, ((_, _, _, kind), method) in enumerate(methods):
                method = method.sort_values("compute_mean")
                label = method_label(method.iloc[0]) + ("" if kind == "epochs" else f" [{kind}]")
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
            axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


CURVE_KEYS = [*GROUP_KEYS, "context"]


def learning_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy against cumulative compute (samples trained so far plus the scoring run, as a multiple of one
    full-data run) at every evaluated epoch of the completed runs that evaluated more than once. For reading: the
    report chooses nothing on them."""
    frames = []
    for _, run in runs[runs["status"] == "completed"].iterrows():
        try:
            metrics = pd.read_csv(Path(run["run_dir"]) / "metrics.csv")
            full = float(run["full_data_samples"])
            scoring = float(run["scoring_cost_samples"] or 0)
        except (OSError, ValueError, TypeError, KeyError, pd.errors.ParserError):
            continue
        if "test_acc" not in metrics or metrics["test_acc"].notna().sum() < 2 or not full > 0:
            continue
        trained = metrics["subset_size"]
        if "samples_trained" in metrics:
            trained = metrics["samples_trained"].fillna(trained)
        evaluated = metrics["test_acc"].notna()
        frame = pd.DataFrame(
            {
                "epoch": metrics.loc[evaluated, "epoch"],
                "compute": ((trained.cumsum() + scoring) / full)[evaluated],
                "test_acc": metrics.loc[evaluated, "test_acc"],
            }
        )
        for key in (*CURVE_KEYS, "seed"):
            frame[key] = run[key]
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*CURVE_KEYS, "seed", "epoch", "compute", "test_acc"])
    curves = pd.concat(frames, ignore_index=True)
    curves["pruning_rate"] = pd.to_numeric(curves["pruning_rate"])
    curves["epochs"] = pd.to_numeric(curves["epochs"]).astype("Int64")
    return curves


def plot_curves(curves: pd.DataFrame, table: pd.DataFrame) -> bytes | None:
    """PNG bytes: per context, one panel per budget kind and pruning rate: each method's test accuracy against
    cumulative compute (mean over seeds at each evaluated epoch), beside the full-data run's own curve (grey) and the
    frontier's end points (black): the picture RS2 argues with."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    curves = curves.assign(kind=curves["budget"].str.split("=").str[0])
    is_frontier = (curves["sampler"] == "full") & (curves["kind"] == "compute")
    panels = []
    for context, group in curves[~is_frontier].groupby(CONTEXT_KEYS, sort=True, dropna=False):
        is_ref = group["sampler"] == "full"
        for (kind, rate), methods in group[~is_ref].groupby(["kind", "pruning_rate"], sort=True):
            panels.append((context, kind, rate, methods, group[is_ref]))
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(9 * columns, 4.5 * rows), squeeze=False, constrained_layout=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"] + ["#444444", "#bcbd22", "#17becf"]
    for axis, (context, kind, rate, methods, full) in zip(axes.flat, panels, strict=False):
        if not full.empty:
            mean = full.groupby("epoch")[["compute", "test_acc"]].mean()
            axis.plot(
                mean["compute"], mean["test_acc"], color="grey", lw=2, label="full data (its own curve)"
            )
        ends = table[table["frontier"] | table["reference"]]
        ends = ends[[tuple(r) == tuple(context) for r in ends[CONTEXT_KEYS].itertuples(index=False)]]
        if len(ends) and (ends["frontier"]).any():
            ends = ends.sort_values("compute_mean")
            axis.plot(ends["compute_mean"], ends["test_acc_mean"], "kx--", label="frontier (end of each run)")
        for number, (_, method) in enumerate(
            methods.groupby(["importance", "sampler", "settings"], sort=True)
        ):
            mean = method.groupby("epoch")[["compute", "test_acc"]].mean()
            axis.plot(
                mean["compute"],
                mean["test_acc"],
                color=colors[number % len(colors)],
                marker=".",
                label=method_label(method.iloc[0]),
            )
        dataset, model, epochs, extra = context
        axis.set(
            title=f"{dataset} · {model} · {epochs} epochs · {kind} · p={rate:g}"
            + (f"\n{extra}" if extra else ""),
            xlabel="compute so far: samples trained incl. the scoring run (× one full-data run)",
            ylabel="test accuracy (mean over seeds)",
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def report(paths: Iterable[str | Path], out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """collect → summarize → write: the table, the runs left out, and one note per file written."""
    runs = collect(paths)
    table = summarize(runs)
    failed = failed_runs(runs)
    return table, failed, write_report(table, failed, out_dir, learning_curves(runs))
