"""Sweep cost: a 4-rate multirun with a static importance against 4 independent runs without the cache.

    A. ``datacull train -m importance=aum sampler=ccs sampler.pruning_rate=0.3,0.5,0.7,0.9``: one process,
       the scoring run trained once and read from the cache by the later jobs;
    B. the same multirun with ``cache_dir`` set per job (``.../cache-${sampler.pruning_rate}``): every job
       trains its own scoring model, so B / A is the cache's saving alone;
    C. the four configurations as four ``datacull train`` commands, each with its own cache: what the sweep
       costs without the cache and without the single process (torch and Hydra start four times).

Wall time of each, end to end (process start included), and the ratios to A. Every arm must reach the
same results (the same scores choose the same subset, so each rate's test accuracy is equal).

    python scripts/bench_sweep_cost.py           # CIFAR-10 subset (50 per class), cnn, 3 epochs
    python scripts/bench_sweep_cost.py --quick   # digits, 2 rates, 2 epochs, arms A and B; asserts equal results
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

CIFAR10 = benchlib.SHARED_CIFAR10


def workload(quick: bool) -> tuple[list[float], list[str]]:
    """Pruning rates and the overrides every run shares."""
    if quick:
        return [0.3, 0.7], [
            "dataset=digits",
            "dataset.subset_per_class=10",
            "trainer.epochs=2",
            "importance.trajectory_length=2",
        ]
    dataset = (
        [
            "dataset=imagefolder",
            f"dataset.root={CIFAR10}",
            "dataset.subset_per_class=50",
            "dataset.test_subset_per_class=50",
            "model=cnn",
            "model.width=16",
        ]
        if (CIFAR10 / "train").is_dir()
        else ["dataset=digits"]
    )
    return [0.3, 0.5, 0.7, 0.9], [*dataset, "trainer.epochs=3", "importance.trajectory_length=3"]


def datacull(arguments: list[str], output_dir: Path, cache_dir: Path, threads: int | None) -> None:
    from datacull.launch import datacull_command, run_datacull

    env = {
        "PYTHONPATH": str(benchlib.REPO),
        "DATACULL_OUTPUT_DIR": str(output_dir),
        "DATACULL_CACHE_DIR": str(cache_dir),
    }
    command = datacull_command(
        "train",
        *arguments,
        "importance=aum",
        "sampler=ccs",
        "trainer.progress=log",
        "trainer.device=cpu",
        f"trainer.num_threads={threads or 'null'}",
    )
    result = run_datacull(command, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def summaries(output_dir: Path) -> dict[float, dict]:
    found = [json.loads(path.read_text()) for path in output_dir.rglob("summary.json")]
    return {float(summary["pruning_rate"]): summary for summary in found}


def run_arm(
    arm: str, rates: list[float], common: list[str], folder: Path, threads: int | None
) -> tuple[float, dict[float, dict]]:
    """Wall seconds of one arm, and the summaries of its runs by pruning rate."""
    output = folder / arm / "outputs"
    swept = f"sampler.pruning_rate={','.join(str(rate) for rate in rates)}"
    start = time.perf_counter()
    if arm == "multirun":
        datacull(["-m", *common, swept], output, folder / arm / "cache", threads)
    elif arm == "multirun_no_cache":
        per_job = f"cache_dir={folder / arm}/cache-${{sampler.pruning_rate}}"
        datacull(["-m", *common, swept, per_job], output, folder / arm / "unused", threads)
    else:
        for rate in rates:
            datacull(
                [*common, f"sampler.pruning_rate={rate}"], output, folder / arm / f"cache-{rate}", threads
            )
    return time.perf_counter() - start, summaries(output)


ARMS = {
    "multirun": "A. one multirun (-m), scoring cache shared",
    "multirun_no_cache": "B. one multirun, each job its own cache",
    "independent": "C. independent commands, each its own cache",
}


def main() -> None:
    args = benchlib.parser(__doc__.splitlines()[0]).parse_args()
    rates, common = workload(args.quick)
    repeats = 1 if args.quick else args.repeats
    arms = list(ARMS)[:2] if args.quick else list(ARMS)
    seconds = {arm: [] for arm in arms}
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        for repeat in range(repeats):  # arms interleaved, so that a change in the machine's load hits all
            for arm in arms:
                wall, results[arm] = run_arm(arm, rates, common, Path(folder) / f"{repeat}", args.threads)
                seconds[arm].append(wall)

    problems = []
    for arm, by_rate in results.items():
        if sorted(by_rate) != rates:
            problems.append(f"{arm} finished rates {sorted(by_rate)}, expected {rates}")
            continue
        hits = [by_rate[rate]["scoring_cache_hit"] for rate in rates]
        expected = [False] + [arm == "multirun"] * (len(rates) - 1)
        if hits != expected:
            problems.append(f"{arm}: scoring cache hits {hits}, expected {expected}")
        for rate in rates:
            if by_rate[rate]["test_acc"] != results["multirun"][rate]["test_acc"]:
                problems.append(
                    f"{arm} p={rate}: test_acc {by_rate[rate]['test_acc']} != multirun's {results['multirun'][rate]['test_acc']}"
                )

    base = statistics.median(seconds["multirun"])
    rows = []
    for arm in arms:
        label = ARMS[arm]
        stat = benchlib.summary(seconds[arm])
        scoring = sum(summary["scoring_wall_time_s"] for summary in results[arm].values())
        rows.append(
            [
                label,
                f"{stat['median_s']:.1f} s ({stat['min_s']:.1f}–{stat['max_s']:.1f})",
                f"{stat['median_s'] / base:.2f}",
                f"{scoring:.1f} s",
            ]
        )
    text = benchlib.table(["", "wall time: median (min–max)", "÷ A", "scoring time (last repeat)"], rows)
    text += f"\n\nresults identical across arms: {'yes' if not problems else 'NO: ' + '; '.join(problems)}"
    title = f"Sweep cost: AUM + CCS at pruning rates {rates}, overrides {' '.join(common)}"
    benchlib.report(
        args, title, text, {"rates": rates, "overrides": common, "repeats": repeats, "seconds": seconds}
    )
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
