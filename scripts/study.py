"""The CIFAR-10 study of STUDY.md: every method at every pruning rate and seed, then one report.

    python scripts/study.py                       # the study: about 90 minutes on 2 CPU cores
    python scripts/study.py --quick --out /tmp/s  # the same runs on a 100-image subset, about a minute

Each method is one ``datacull train -m experiment=study_cifar10 ...`` sweep over the pruning rates, seed by seed
(all methods of seed 0 first, so a study cut short still has complete seeds). The static methods of a seed share
one scoring run through the cache (AUM reads all of it, TDDS and EL2N its first 10 epochs). Everything lands in
``--out`` (one sweep folder per seed and method), and ``datacull report`` then writes ``report.md``, ``report.csv``
and ``report.png`` there. Extra arguments after ``--`` are Hydra overrides passed to every run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

RATES = "0.5,0.7,0.9"
PROXY = ["scoring.model=cnn", "scoring.model.width=8"]

#: name -> the overrides that select the method (papers' settings; nothing here was tuned on the test set)
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
    command = [sys.executable, "-m", "datacull", *arguments]
    print("+ datacull " + " ".join(arguments), flush=True)
    return subprocess.run(command, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/study"), help="study folder (default outputs/study)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of the methods")
    parser.add_argument("--quick", action="store_true", help="a one-minute version on a 100-image subset")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args(argv)
    known = {**METHODS, **INVESTIGATIONS}
    unknown = sorted(set(args.methods.split(",")) - set(known))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out = args.out.resolve()
    env = dict(os.environ, DATACULL_CACHE_DIR=os.environ.get("DATACULL_CACHE_DIR", str(out / "cache")))
    common = ["experiment=study_cifar10", *(QUICK if args.quick else []), *args.overrides]
    failed = []
    started = time.perf_counter()
    for seed in args.seeds.split(","):
        for method in args.methods.split(","):
            sweep_dir = out / f"s{seed}" / method
            status = datacull(
                ["train", "-m", *common, *known[method], f"seed={seed}", f"hydra.sweep.dir={sweep_dir}"],
                env,
            )
            if status != 0:
                failed.append(f"{method} seed {seed} (exit status {status})")
    print(f"study: {len(args.seeds.split(','))} seed(s) in {time.perf_counter() - started:.0f} s", flush=True)
    report = datacull(["report", str(out), "--out", str(out)], env)
    write_overlap(out)
    for failure in failed:
        print(f"error: {failure} failed; see its train.log under {out}", file=sys.stderr)
    return 1 if failed or report != 0 else 0


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
