"""The CIFAR-10 study of STUDY.md: every method at every pruning rate, budget and seed, then one report.

    python scripts/study.py                       # the study (hours on 2 CPU cores; seed by seed)
    python scripts/study.py --quick --out /tmp/s  # the same runs on a 100-image subset, a few minutes
    python scripts/study.py --export docs/study/runs --out outputs/study   # copy the per-run records to commit

Each entry is one ``datacull train -m experiment=study_cifar10 ...`` sweep over its pruning rates (or compute
budgets), seed by seed (every entry of seed 0 first, so a study cut short still has complete seeds). The static
methods of a seed share one scoring run through the cache. Three kinds of rows (``trainer.budget``):

- equal epochs (``METHODS``): every method trains ``trainer.epochs`` passes over its subset;
- the frontier (``FRONTIER``): full data trained for a share of its samples (``trainer.budget=compute``), the
  competitor of every compute-saving claim; and the same-compute controls of InfoBatch, derived from the seed's
  own InfoBatch run (RS2 at its realized rate, the frontier at its compute);
- equal steps (``EQUAL_STEPS``): the subset trains as many steps as full data (the CCS / data-diet protocol);
- controls at 90% (keep-easiest, class-balanced top-k) and a 4x longer budget (``LONGER``).

Everything lands in ``--out`` (one sweep folder per seed and entry); ``datacull report`` then writes
``report.md``, ``report.csv``, ``report.png`` and ``report_curves.png`` there, and the script adds ``overlap.csv``
(proxy against target kept sets) and ``classes.csv`` (the class shares of what each run trained). Extra arguments
after ``--`` are Hydra overrides passed to every run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

RATES = "0.5,0.7,0.9"
PROXY = ["scoring.model=cnn", "scoring.model.width=8"]

#: name -> the overrides that select the method (papers' settings; nothing here was tuned on the test set)
#: Equal epochs: every method trains trainer.epochs passes over its subset.
METHODS = {
    "full": ["importance=uniform", "sampler=full", "sampler.pruning_rate=0.0"],
    "ccs_aum": [
        "importance=aum",
        "importance.probability_space=true",
        "sampler=ccs",
        f"sampler.pruning_rate={RATES}",
    ],
    "tdds": ["importance=tdds", "sampler=tdds", f"sampler.pruning_rate={RATES}"],
    "el2n_topk": ["importance=el2n", "sampler=topk", f"sampler.pruning_rate={RATES}"],
    "random": ["importance=uniform", "sampler=random", f"sampler.pruning_rate={RATES}"],
    "rs2": ["importance=uniform", "sampler=rs2", f"sampler.pruning_rate={RATES}"],
    "rcap": ["importance=rcap", "sampler=rcap", f"sampler.pruning_rate={RATES}"],
    "metriq": ["importance=uniform", "sampler=metriq", f"sampler.pruning_rate={RATES}"],
    "infobatch": ["importance=loss", "sampler=infobatch", "sampler.pruning_rate=0.5"],  # its own setting
    # Selection via Proxy (Coleman et al., ICLR 2020): the same methods scored by a 4x narrower cnn (1/16 the FLOPs)
    "ccs_aum_proxy": [
        "importance=aum",
        "importance.probability_space=true",
        "sampler=ccs",
        f"sampler.pruning_rate={RATES}",
        *PROXY,
    ],
    "tdds_proxy": ["importance=tdds", "sampler=tdds", f"sampler.pruning_rate={RATES}", *PROXY],
}
#: The frontier: full data trained for a share of one full-data run's samples (the schedule spans that budget).
FRONTIER = {
    "frontier": [
        "importance=uniform",
        "sampler=full",
        "trainer.budget=compute",
        "trainer.compute=0.1,0.3,0.5,0.7",
    ],
}
#: Controls at 90%: the other end of the same score, and class-proportional quotas.
CONTROLS_90 = {
    "el2n_easiest": ["importance=el2n", "sampler=topk", "sampler.easiest=true", "sampler.pruning_rate=0.9"],
    "el2n_class_balanced": [
        "importance=el2n",
        "sampler=topk",
        "sampler.class_balanced=true",
        "sampler.pruning_rate=0.9",
    ],
}
#: Equal steps (the CCS / data-diet protocol): the subset trains as many optimizer steps as full data.
EQUAL_STEPS = {
    f"{name}_equal_steps": [
        *(o for o in METHODS[name] if not o.startswith("sampler.pruning_rate")),
        "sampler.pruning_rate=0.7,0.9",
        "trainer.budget=equal_steps",
        "trainer.eval_every=24",  # a 90% subset makes 240 passes: a curve point every 24 of them
    ]
    for name in ("random", "ccs_aum", "el2n_topk", "tdds")
}
#: A 4x longer budget: does any method become lossless, and does the frontier catch it?
LONGER_EPOCHS = 96
LONGER = {
    f"{name}_{LONGER_EPOCHS}_epochs": [*overrides, f"trainer.epochs={LONGER_EPOCHS}"]
    for name, overrides in {
        "full": METHODS["full"],
        "frontier": [*FRONTIER["frontier"][:-1], "trainer.compute=0.5"],
        "random": ["importance=uniform", "sampler=random", "sampler.pruning_rate=0.5"],  # CCS's control
        "infobatch": METHODS["infobatch"],
        "rs2": ["importance=uniform", "sampler=rs2", "sampler.pruning_rate=0.5"],
        "ccs_aum": [*METHODS["ccs_aum"][:-1], "sampler.pruning_rate=0.5"],
    }.items()
}
#: Same-compute controls of the seed's InfoBatch run (its realized rate and compute differ from seed to seed, in
#: the fourth decimal: rounded to three, so that the seeds' controls average together): name -> (the InfoBatch entry
#: it controls, a function of that run's summary giving the overrides).
INFOBATCH_CONTROLS = {
    "rs2_at_infobatch_rate": (
        "infobatch",
        lambda run: [
            "importance=uniform",
            "sampler=rs2",
            f"sampler.pruning_rate={run['realized_pruning_rate']:.3f}",
        ],
    ),
    "frontier_at_infobatch_compute": ("infobatch", lambda run: frontier_at(1.0 - run["compute_saved"])),
    # at the 4x budget the frontier has one point below 1.0 (0.5): InfoBatch's compute is measured, not interpolated
    f"frontier_at_infobatch_compute_{LONGER_EPOCHS}_epochs": (
        f"infobatch_{LONGER_EPOCHS}_epochs",
        lambda run: [*frontier_at(1.0 - run["compute_saved"]), f"trainer.epochs={LONGER_EPOCHS}"],
    ),
}


def frontier_at(compute: float) -> list[str]:
    """Full data trained for ``compute`` of one full-data run (rounded to three decimals)."""
    return ["importance=uniform", "sampler=full", "trainer.budget=compute", f"trainer.compute={compute:.3f}"]


#: The default order of a seed: the budget question first, the costliest rows last (the proxy rows of METHODS
#: are run by name: STUDY.md's proxy section has them).
DEFAULT_ORDER = [
    "full",
    "frontier",
    "random",
    "rs2",
    "ccs_aum",
    "tdds",
    "infobatch",
    "rs2_at_infobatch_rate",
    "frontier_at_infobatch_compute",
    "el2n_topk",
    "rcap",
    "metriq",
    *CONTROLS_90,
    *EQUAL_STEPS,
    *LONGER,
    f"frontier_at_infobatch_compute_{LONGER_EPOCHS}_epochs",
]

#: which method each proxy row stands in for, to compare their kept sets
PROXY_OF = {"ccs_aum_proxy": "ccs_aum", "tdds_proxy": "tdds"}

#: Follow-ups to orderings that did not reproduce (STUDY.md): each varies one protocol choice of a method, on the
#: same preset. Not part of the default study; run with --methods. Reported as measured, never used to pick a setting.
INVESTIGATIONS = {
    # RCAP with the official code's class mass instead of the class-wise aggregated loss
    "rcap_official_mass": [
        "importance=rcap",
        "sampler=rcap",
        "sampler.class_mass=trained_importance",
        f"sampler.pruning_rate={RATES}",
    ],
    # CCS without its hard cut (beta = 0) where the paper's table cuts
    "ccs_aum_beta0": [
        "importance=aum",
        "importance.probability_space=true",
        "sampler=ccs",
        "sampler.beta=0.0",
        "sampler.pruning_rate=0.7,0.9",
    ],
    # TDDS over the whole scoring run (24 epochs) instead of the official first 10
    "tdds_whole_run": [
        "importance=tdds",
        "sampler=tdds",
        "importance.trajectory_length=24",
        f"sampler.pruning_rate={RATES}",
    ],
    # InfoBatch and its full-data reference trained twice as long
    "infobatch_48_epochs": [
        "importance=loss",
        "sampler=infobatch",
        "sampler.pruning_rate=0.5",
        "trainer.epochs=48",
    ],
    "full_48_epochs": ["importance=uniform", "sampler=full", "sampler.pruning_rate=0.0", "trainer.epochs=48"],
}

#: --quick: the same pipeline on a tiny subset (the scoring run still covers TDDS's 10-epoch window)
QUICK = [
    "dataset.subset_per_class=10",
    "dataset.test_subset_per_class=10",
    "model.width=16",  # twice the proxy's width, so that the proxy rows score with another model
    "trainer.epochs=10",
    "trainer.batch_size=32",
]


def datacull(arguments: list[str], env: dict[str, str]) -> int:
    from datacull.launch import datacull_command, run_datacull

    print("+ datacull " + " ".join(arguments), flush=True)
    return run_datacull(datacull_command(*arguments), env=env, capture=False).returncode


def completed_summary(sweep_dir: Path) -> dict | None:
    """The completed summary of a one-job sweep folder (the seed's InfoBatch run), or None."""
    import json

    for path in sorted(sweep_dir.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if summary.get("status") == "completed":
            return summary
    return None


def completed_sweep(sweep_dir: Path, overrides: list[str]) -> bool:
    """Whether ``sweep_dir`` holds every job of the entry's sweep (one per combination of its comma-separated
    values), each completed."""
    import json
    import math

    expected = math.prod(len(o.split("=", 1)[1].split(",")) for o in overrides if "," in o.split("=", 1)[-1])
    statuses = [json.loads(path.read_text()).get("status") for path in sweep_dir.glob("*/summary.json")]
    return len(statuses) >= expected and all(status == "completed" for status in statuses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/study"), help="study folder (default outputs/study)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument(
        "--methods", default=",".join(DEFAULT_ORDER), help="comma-separated entries, in order"
    )
    parser.add_argument("--quick", action="store_true", help="a few-minute version on a 100-image subset")
    parser.add_argument(
        "--export",
        type=Path,
        help="copy every completed run's records from --out into this folder, then stop",
    )
    parser.add_argument(
        "--tables",
        type=Path,
        metavar="DIR",
        help="print STUDY.md's paired tables from DIR/runs.csv, then stop",
    )
    parser.add_argument(
        "--followup-tables",
        type=Path,
        metavar="DIR",
        help="print STUDY.md's follow-up tables (paired intervals) from DIR/followup_runs.csv and "
        "DIR/followup_overlap.csv, then stop",
    )
    parser.add_argument(
        "--skip-done",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="skip a seed's entry whose folder under DIR (an --out or --export folder) holds all its completed "
        "runs; repeatable: a study spread over sessions runs only what is missing",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args(argv)
    if args.export is not None:
        print(f"exported {export(args.out.resolve(), args.export)} run(s) to {args.export}")
        return 0
    if args.tables is not None:
        print(tables(args.tables))
        return 0
    if args.followup_tables is not None:
        print(followup_tables(args.followup_tables))
        return 0
    known = {**METHODS, **FRONTIER, **CONTROLS_90, **EQUAL_STEPS, **LONGER, **INVESTIGATIONS}
    unknown = sorted(set(args.methods.split(",")) - set(known) - set(INFOBATCH_CONTROLS))
    if unknown:
        parser.error(
            f"unknown method(s) {', '.join(unknown)}; known: {', '.join([*known, *INFOBATCH_CONTROLS])}"
        )
    out = args.out.resolve()
    env = dict(os.environ, DATACULL_CACHE_DIR=os.environ.get("DATACULL_CACHE_DIR", str(out / "cache")))
    common = ["experiment=study_cifar10", *(QUICK if args.quick else []), *args.overrides]
    failed = []
    started = time.perf_counter()
    for seed in args.seeds.split(","):
        for method in args.methods.split(","):
            sweep_dir = out / f"s{seed}" / method
            if method in INFOBATCH_CONTROLS:
                controlled, control = INFOBATCH_CONTROLS[method]
                found = (
                    completed_summary(folder / f"s{seed}" / controlled) for folder in [out, *args.skip_done]
                )
                infobatch = next(filter(None, found), None)
                if infobatch is None:
                    failed.append(f"{method} seed {seed} (needs the seed's {controlled} run first)")
                    continue
                overrides = control(infobatch)
            else:
                overrides = known[method]
            if any(completed_sweep(folder / f"s{seed}" / method, overrides) for folder in args.skip_done):
                print(f"study: {method} seed {seed} is done already (--skip-done); skipped", flush=True)
                continue
            status = datacull(
                ["train", "-m", *common, *overrides, f"seed={seed}", f"hydra.sweep.dir={sweep_dir}"], env
            )
            if status != 0:
                failed.append(f"{method} seed {seed} (exit status {status})")
    print(f"study: {len(args.seeds.split(','))} seed(s) in {time.perf_counter() - started:.0f} s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    report = datacull(["report", str(out), *map(str, args.skip_done), "--out", str(out)], env)
    write_overlap(out)
    write_classes(out)
    for failure in failed:
        print(f"error: {failure} failed; see its train.log under {out}", file=sys.stderr)
    return 1 if failed or report != 0 else 0


#: What --export copies of a run: enough for ``datacull report`` and the learning curves, not samples.csv.
RECORDS = ("summary.json", "config.yaml", "metrics.csv")


def export(out: Path, target: Path) -> int:
    """Copy each completed run's records (``RECORDS``) to the same place below ``target``; returns how many.
    ``datacull report target`` then recomputes every table from committed files."""
    import json
    import shutil

    write_classes(out)
    count = 0
    for summary_path in sorted(out.glob("s*/*/*/summary.json")):
        if json.loads(summary_path.read_text()).get("status") != "completed":
            continue
        destination = target / summary_path.parent.relative_to(out)
        destination.mkdir(parents=True, exist_ok=True)
        for name in RECORDS:
            if (summary_path.parent / name).exists():
                shutil.copy2(summary_path.parent / name, destination / name)
        count += 1
    if (out / "overlap.csv").exists():
        shutil.copy2(out / "overlap.csv", target / "overlap.csv")
    merge_classes(out / "classes.csv", target / "classes.csv")
    write_runs_table(target)
    return count


def merge_classes(new: Path, committed: Path) -> None:
    """Add ``new``'s class rows to the ``committed`` classes.csv, replacing the rows of the runs both hold: a study
    spread over sessions exports each session's seeds into one file without losing the earlier ones (whose
    samples.csv are not committed, so they cannot be recomputed)."""
    import pandas as pd

    if not new.exists():
        return
    rows = pd.read_csv(new)
    if committed.exists():
        earlier = pd.read_csv(committed)
        run = ["method", "seed", "pruning_rate"]
        fresh = set(map(tuple, rows[run].round({"pruning_rate": 6}).itertuples(index=False)))
        keep = [
            tuple(key) not in fresh for key in earlier[run].round({"pruning_rate": 6}).itertuples(index=False)
        ]
        rows = pd.concat([earlier[keep], rows], ignore_index=True)
    rows.sort_values(["method", "seed", "pruning_rate", "label"]).to_csv(
        committed, index=False, float_format="%.5f"
    )


#: ``runs.csv``: one row per completed run, the numbers every table of STUDY.md is computed from.
RUN_FIELDS = (
    "seed",
    "budget",
    "compute_budget",
    "pruning_rate",
    "realized_pruning_rate",
    "test_acc",
    "worst_class_acc",
    "compute_saved",
    "samples_trained",
    "scoring_cost_samples",
    "full_data_samples",
    "train_time_s",
    "scoring_cost_s",
    "epochs",
    "steps_trained",
)


def write_runs_table(folder: Path) -> None:
    """``runs.csv`` in ``folder``: each completed run below it (``s<seed>/<entry>/<job>/summary.json``) as one row:
    its entry, the fields of ``RUN_FIELDS`` and compute (1 - compute_saved)."""
    import json

    import pandas as pd

    rows = []
    for path in sorted(folder.glob("s*/*/*/summary.json")):
        summary = json.loads(path.read_text())
        if summary.get("status") == "completed":
            row = {"entry": path.parent.parent.name, **{key: summary.get(key) for key in RUN_FIELDS}}
            row["compute"] = 1.0 - summary["compute_saved"]
            rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)


def paired(row, column: str) -> str:
    """A report Δ in points: the paired mean ± the half-width of its 95% t-interval (n), or — when blank."""
    import math

    mean, half, n = row[column], row[f"{column}_ci95"], row[f"{column}_n"]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    interval = "" if isinstance(half, float) and math.isnan(half) else f" ± {100 * half:.2f}"
    return f"{100 * mean:+.2f}{interval} (n={int(n)})"


def report_lines(folder: Path) -> list[str]:
    """Every line of ``datacull report`` on ``folder`` in points, as STUDY.md reads it: test and worst-class
    accuracy, compute, and each Δ with its 95% t-interval and n. ``epochs`` is the group's full-data epochs (24,
    or the longer budget's 96): each line is compared only with the references of its own group."""
    from datacull.report import collect, summarize

    table = summarize(collect([folder]))
    lines = [
        "Every line of the report (accuracy in %, Δ in points: paired mean ± 95% t half-width, n):",
        "",
        "| epochs | budget | importance | sampler | settings | rate | seeds | compute | test | worst | Δ vs full "
        "| Δ vs random | Δ worst vs random | Δ vs frontier |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in table.sort_values(
        ["epochs", "budget", "sampler", "importance", "settings", "pruning_rate"]
    ).iterrows():
        cells = [
            str(row["epochs"]),
            row["budget"],
            row["importance"],
            row["sampler"],
            row["settings"] or "",
            f"{row['pruning_rate']:g}",
            row["seeds"],
            f"{row['compute_mean']:.3f}",
            f"{100 * row['test_acc_mean']:.2f}",
            f"{100 * row['worst_class_acc_mean']:.2f}",
            paired(row, "delta_test_acc"),
            paired(row, "delta_random_test_acc"),
            paired(row, "delta_random_worst_class_acc"),
            paired(row, "delta_frontier_test_acc"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def infobatch_controls(runs) -> list[str]:
    """STUDY.md's table of each InfoBatch run against its same-compute controls of the same seed and epochs (RS2 at
    its realized rate, the frontier at its compute), with the paired mean Δ ± its 95% t half-width over seeds."""
    lines = ["InfoBatch against its same-compute controls (test accuracy, points; paired by seed):", ""]
    lines.append(
        "| epochs | seed | InfoBatch | compute | RS2 at its rate | Δ | frontier at its compute | Δ |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    by_entry = {entry: frame.set_index("seed") for entry, frame in runs.groupby("entry")}
    means = []
    for suffix in ("", f"_{LONGER_EPOCHS}_epochs"):
        deltas: dict[str, list[float]] = {"RS2": [], "the frontier": []}
        infobatch = by_entry.get(f"infobatch{suffix}")
        if infobatch is None:
            continue
        for seed, info in infobatch.iterrows():
            cells = [str(info.epochs), str(seed), f"{info.test_acc:.4f}", f"{info.compute:.3f}"]
            for name, entry in (
                ("RS2", "rs2_at_infobatch_rate"),
                ("the frontier", "frontier_at_infobatch_compute"),
            ):
                control = by_entry.get(entry + suffix)
                if control is None or seed not in control.index:
                    cells += ["—", "—"]
                    continue
                delta = 100 * (info.test_acc - control.loc[seed, "test_acc"])
                deltas[name].append(delta)
                cells += [
                    f"{control.loc[seed, 'test_acc']:.4f} (compute {control.loc[seed, 'compute']:.3f})",
                    f"{delta:+.2f}",
                ]
            lines.append("| " + " | ".join(cells) + " |")
        for name, values in deltas.items():
            if values:
                means.append(
                    f"{infobatch.epochs.iloc[0]} epochs, InfoBatch − {name}: {mean_with_interval(values)} "
                    f"points (n={len(values)})"
                )
    return [*lines, "", *(f"- {line}" for line in means)]


def tables(folder: Path) -> str:
    """STUDY.md's tables, from ``folder`` (an --export folder): every report line in points with its intervals,
    InfoBatch against its same-compute controls (paired by seed, from ``runs.csv``), and the class balance of each
    kept set at 90% (``classes.csv``)."""
    import pandas as pd

    runs = pd.read_csv(folder / "runs.csv")
    lines = [*report_lines(folder), ""]
    lines += infobatch_controls(runs)
    classes_path = folder / "classes.csv"
    if classes_path.exists():
        classes = pd.read_csv(classes_path)
        at_90 = classes[classes["pruning_rate"].round(3) == 0.9]
        lines += [
            "",
            "Class balance of the kept sets at 90% (static samplers: samples kept per class; 100 is balanced):",
            "",
        ]
        lines.append("| entry | seed | fewest | most | classes with < 50 |")
        lines.append("|---|---|---|---|---|")
        for (entry, seed), frame in at_90.groupby(["method", "seed"]):
            kept = frame["kept"]
            if (
                kept.sum() <= 1000
            ):  # a static sampler's kept set (a dynamic one keeps more samples over the run)
                lines.append(f"| {entry} | {seed} | {kept.min()} | {kept.max()} | {(kept < 50).sum()} |")
    return "\n".join(lines)


#: The follow-up's rows (``followup_runs.csv``'s ``method``) as STUDY.md names them.
FOLLOWUPS = {
    "ccs_aum": "rerun of CCS (AUM)",
    "tdds": "rerun of TDDS",
    "rcap_official_mass": "RCAP, the official class mass",
    "ccs_aum_beta0": "CCS without its hard cut (β = 0)",
    "tdds_whole_run": "TDDS over all 24 scoring epochs",
    "metriq": "MetriQ with a 24-epoch query run",
    "ccs_aum_proxy": "CCS scored by a proxy",
    "tdds_proxy": "TDDS scored by a proxy",
}


def mean_with_interval(values: list[float]) -> str:
    """The mean of paired differences ± the half-width of its 95% t-interval (the mean alone for one value)."""
    import statistics

    from datacull.report import t_halfwidth

    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:+.2f}"
    return f"{mean:+.2f} ± {t_halfwidth(statistics.stdev(values), len(values)):.2f}"


def paired_delta(runs, method: str, control: str, rate: float, metric: str) -> str:
    """``method`` − ``control`` at ``rate`` in points, paired by seed: mean ± 95% t half-width (n), or — ."""

    def by_seed(name: str):
        rows = runs[(runs["method"] == name) & (runs["pruning_rate"].round(3) == round(rate, 3))]
        return rows.set_index("seed")[metric]

    ours, theirs = by_seed(method), by_seed(control)
    seeds = sorted(set(ours.index) & set(theirs.index))
    if not seeds:
        return "—"
    deltas = [100 * (ours[seed] - theirs[seed]) for seed in seeds]
    return f"{mean_with_interval(deltas)} (n={len(deltas)})"


def followup_tables(folder: Path) -> str:
    """STUDY.md's follow-up tables from ``folder/followup_runs.csv`` (per-seed rows of the 2026-12-02 follow-up):
    each variant against static random of the same seed, and the proxy-scored rows against the target-scored ones
    with their kept-set overlap (``followup_overlap.csv``); every Δ a paired mean ± its 95% t half-width (n)."""
    import pandas as pd

    runs = pd.read_csv(folder / "followup_runs.csv")
    lines = [
        "| follow-up | rate | Δ test vs random | Δ worst class vs random |",
        "|---|---|---|---|",
    ]
    for method, label in FOLLOWUPS.items():
        for rate in sorted(runs.loc[runs["method"] == method, "pruning_rate"].unique()):
            cells = [label, f"{rate:g}"]
            cells += [paired_delta(runs, method, "random", rate, m) for m in ("test_acc", "worst_class_acc")]
            lines.append("| " + " | ".join(cells) + " |")
    overlap = pd.read_csv(folder / "followup_overlap.csv")
    lines += [
        "",
        "| method | rate | target-scored | proxy-scored | Δ proxy − target | Δ worst class | compute target → proxy "
        "| kept-set overlap (chance) | overlap seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for target, name in (("ccs_aum", "CCS (AUM)"), ("tdds", "TDDS")):
        proxy = f"{target}_proxy"
        for rate in sorted(runs.loc[runs["method"] == proxy, "pruning_rate"].unique()):
            at = runs[runs["pruning_rate"].round(3) == round(rate, 3)]
            means = at.groupby("method")[["test_acc", "compute"]].mean()
            shared = overlap[
                (overlap["method"] == target) & (overlap["pruning_rate"].round(3) == round(rate, 3))
            ]
            cells = [
                name,
                f"{rate:g}",
                f"{100 * means.loc[target, 'test_acc']:.2f}",
                f"{100 * means.loc[proxy, 'test_acc']:.2f}",
                paired_delta(runs, proxy, target, rate, "test_acc"),
                paired_delta(runs, proxy, target, rate, "worst_class_acc"),
                f"{means.loc[target, 'compute']:.2f} → {means.loc[proxy, 'compute']:.2f}",
                f"{shared['kept_overlap'].mean():.2f} ({1 - rate:.2f})",
                ",".join(map(str, sorted(shared["seed"]))),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_classes(out: Path) -> None:
    """``classes.csv``: for every completed run, the share of the samples it trained that each class took (from
    ``samples.csv``: label and times selected). For a static sampler that is the class histogram of its kept set."""
    import json

    import pandas as pd

    rows = []
    for summary_path in sorted(out.glob("s*/*/*/summary.json")):
        summary = json.loads(summary_path.read_text())
        samples_path = summary_path.parent / "samples.csv"
        if summary.get("status") != "completed" or not samples_path.exists():
            continue
        samples = pd.read_csv(samples_path)
        trained = samples.groupby("label")["times_selected"].sum()
        kept = samples[samples["times_selected"] > 0].groupby("label").size()
        for label, count in trained.items():
            rows.append(
                {
                    "method": summary_path.parent.parent.name,
                    "seed": summary["seed"],
                    "pruning_rate": summary["pruning_rate"],
                    "label": int(label),
                    "trained_share": count / trained.sum(),
                    "kept": int(kept.get(label, 0)),
                }
            )
    if rows:
        pd.DataFrame(rows).to_csv(out / "classes.csv", index=False, float_format="%.5f")
        print(f"wrote {out / 'classes.csv'}", flush=True)


def kept(run: Path) -> set[int]:
    import pandas as pd

    samples = pd.read_csv(run / "samples.csv")
    return set(samples.loc[samples["times_selected"] > 0, "index"].tolist())


def write_overlap(out: Path) -> None:
    """``overlap.csv``: for each proxy row, seed and pruning rate, the share of the target-scored method's kept set
    that the proxy-scored one keeps too (|A ∩ B| / |A|; both keep the same number) and the Jaccard index."""
    import json

    rows = []
    for proxy, target in PROXY_OF.items():
        for seed_dir in sorted(out.glob("s*")):
            runs = {}
            for name in (proxy, target):
                for summary_path in (seed_dir / name).glob("*/summary.json"):
                    summary = json.loads(summary_path.read_text())
                    if summary.get("status") == "completed":
                        runs[(name, summary["pruning_rate"])] = summary_path.parent
            for (name, rate), run in sorted(runs.items()):
                if name != proxy or (target, rate) not in runs:
                    continue
                a, b = kept(runs[(target, rate)]), kept(run)
                rows.append(
                    f"{target},{seed_dir.name[1:]},{rate},{len(a & b) / len(a):.4f},{len(a & b) / len(a | b):.4f}"
                )
    if rows:
        (out / "overlap.csv").write_text(
            "method,seed,pruning_rate,kept_overlap,jaccard\n" + "\n".join(rows) + "\n"
        )
        print(f"wrote {out / 'overlap.csv'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
