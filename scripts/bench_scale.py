"""Scoring at scale: peak memory, disk and time of trajectory importances, full store against reduced store, this
code against an earlier tree; one ImageNet-sized point; the streaming data path against the in-memory one.

    python scripts/bench_scale.py --old-tree /path/to/earlier/checkout      # N=400,000, C=100, 20 epochs
    python scripts/bench_scale.py --imagenet                                 # + N=1,281,167, C=1,000 (reduced)
    python scripts/bench_scale.py --quick                                    # tiny sizes, checks agreement

Synthetic logits (a label signal that grows over the epochs, plus noise) are logged epoch by epoch through the
library's DCLogger, as a scoring run logs them. Each importance is then computed in a fresh child process, whose
peak resident memory (``VmHWM``) is reported beside that of a child that only imports torch and datacull.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

if "--child" not in sys.argv:  # a child imports datacull from its PYTHONPATH (this tree, or an earlier one)
    sys.path.insert(0, str(benchlib.REPO))
FULL = {"samples": 400_000, "classes": 100, "epochs": 20, "window": 10}
QUICK = {"samples": 2_000, "classes": 10, "epochs": 6, "window": 3}
IMAGENET = {"samples": 1_281_167, "classes": 1_000, "epochs": 20}
IMPORTANCES = ("tdds", "aum", "forgetting")
BATCH = 8192


def synthetic_epoch(epoch: int, labels, classes: int, start: int, stop: int):
    """Logits of samples ``start:stop`` in ``epoch``: noise plus a label signal that grows with the epochs."""
    import torch

    generator = torch.Generator().manual_seed(epoch * 1_000_003 + start)
    logits = torch.randn(stop - start, classes, generator=generator)
    logits[torch.arange(stop - start), labels[start:stop]] += 0.15 * (epoch + 1)
    return logits


def log_trajectory(folder: Path, sizes: dict, reduce_with: str | None = None) -> float:
    """Write the synthetic trajectory (full, or reduced for importance ``reduce_with``); seconds taken."""
    import torch

    from datacull import DCLogger

    labels = torch.arange(sizes["samples"]) % sizes["classes"]
    reducer = None
    if reduce_with is not None:
        reducer = make_importance(reduce_with, folder, sizes, reduced=True).epoch_reducer()
    logger = DCLogger(folder, num_samples=sizes["samples"], reducer=reducer)
    started = time.perf_counter()
    for epoch in range(sizes["epochs"]):
        for start in range(0, sizes["samples"], BATCH):
            stop = min(start + BATCH, sizes["samples"])
            logger.log_metric(
                epoch,
                torch.arange(start, stop),
                synthetic_epoch(epoch, labels, sizes["classes"], start, stop),
            )
        logger.flush()
    return time.perf_counter() - started


def make_importance(name: str, folder: Path, sizes: dict, reduced: bool = False):
    import torch
    from torch.utils.data import TensorDataset

    from datacull import DCDataset, DCLogger
    from datacull.methods.aum import AUMImportance
    from datacull.methods.forgetting import ForgettingImportance
    from datacull.methods.tdds import TDDSImportance

    labels = torch.arange(sizes["samples"]) % sizes["classes"]
    dataset = DCDataset(TensorDataset(torch.zeros(sizes["samples"], 0), labels))
    logger = DCLogger(folder)
    extra = {"reduced": True} if reduced else {}
    if name == "tdds":
        return TDDSImportance(dataset, sizes["epochs"], sizes["window"], 0.9, logger, **extra)
    if name == "aum":
        return AUMImportance(dataset, sizes["epochs"], logger, **extra)
    return ForgettingImportance(dataset, sizes["epochs"], logger, **extra)


def peak_rss_gb() -> float:
    """This process's own peak resident memory. Linux's ``ru_maxrss`` survives exec: a child started by a big
    parent reports the parent's peak, so it is read from ``VmHWM`` (this address space only) where there is one."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def child(args: list[str]) -> None:
    """``--child NAME FOLDER SIZES_JSON REDUCED OUT``: compute one importance; write seconds, peak RSS, scores."""
    name, folder, sizes, reduced, out = (
        args[0],
        Path(args[1]),
        json.loads(args[2]),
        args[3] == "1",
        Path(args[4]),
    )
    import numpy as np
    import torch  # noqa: F401

    import datacull  # noqa: F401

    if name == "baseline":
        result = {"seconds": 0.0}
    else:
        importance = make_importance(name, folder, sizes, reduced)
        started = time.perf_counter()
        scores = importance.compute_importance()
        result = {"seconds": time.perf_counter() - started}
        np.save(out.with_suffix(".npy"), np.asarray(scores))
    result["peak_rss_gb"] = peak_rss_gb()
    out.write_text(json.dumps(result))


def measure(name: str, folder: Path, sizes: dict, reduced: bool, tree: Path | None, work: Path) -> dict:
    out = work / f"{name}-{'reduced' if reduced else 'full'}-{'old' if tree else 'new'}.json"
    env = {**os.environ, "PYTHONPATH": str(tree or benchlib.REPO)}
    command = [
        sys.executable,
        __file__,
        "--child",
        name,
        str(folder),
        json.dumps(sizes),
        "1" if reduced else "0",
        str(out),
    ]
    subprocess.run(command, check=True, env=env, cwd=work)
    return json.loads(out.read_text())


def folder_gb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*.npy")) / 1e9


def scoring_rows(sizes: dict, old_tree: Path | None, work: Path) -> tuple[list[list], dict]:
    import numpy as np

    full = work / "full"
    write_full = log_trajectory(full, sizes)
    results = {
        "full_store_gb": folder_gb(full),
        "write_full_s": write_full,
        "baseline": measure("baseline", full, sizes, False, None, work),
    }
    rows = []
    for name in IMPORTANCES:
        reduced = work / f"reduced-{name}"
        write_reduced = log_trajectory(reduced, sizes, reduce_with=name)
        sides = {
            "this code, full store": measure(name, full, sizes, False, None, work),
            "this code, reduced store": measure(name, reduced, sizes, True, None, work),
        }
        if old_tree is not None:
            sides["earlier code, full store"] = measure(name, full, sizes, False, old_tree, work)
        reference = np.load(work / f"{name}-full-new.npy")
        for side, result in sides.items():
            tag = "reduced-new" if "reduced" in side else ("full-old" if "earlier" in side else "full-new")
            scores = np.load(work / f"{name}-{tag}.npy")
            result["max_rel_diff"] = float(
                np.max(np.abs(scores - reference) / np.maximum(np.abs(reference), 1e-12))
            )
            disk = folder_gb(reduced) if "reduced" in side else results["full_store_gb"]
            rows.append(
                [
                    name,
                    side,
                    f"{result['peak_rss_gb']:.2f}",
                    f"{disk:.3f}",
                    f"{result['seconds']:.1f}",
                    f"{result['max_rel_diff']:.1e}",
                ]
            )
        results[name] = {**sides, "reduced_store_gb": folder_gb(reduced), "write_reduced_s": write_reduced}
        shutil.rmtree(reduced)
    return rows, results


def imagenet_point(work: Path) -> dict:
    """AUM over a reduced store at ImageNet size: the logits of 20 epochs are never on disk."""
    folder = work / "imagenet-aum"
    written = log_trajectory(folder, IMAGENET, reduce_with="aum")
    result = measure("aum", folder, IMAGENET, True, None, work)
    return {
        "write_s": written,
        "store_gb": folder_gb(folder),
        "full_store_gb": IMAGENET["samples"] * IMAGENET["classes"] * 4 * IMAGENET["epochs"] / 1e9,
        **result,
    }


def data_path(quick: bool) -> list[list]:
    """Epoch throughput of the cnn on the CIFAR-10 image folder: decoded in memory against streamed from disk."""
    import torch
    from hydra import compose, initialize_config_dir

    from datacull.engine import Engine
    from datacull.parts import load_dataset
    from datacull.paths import config_dir
    from datacull.recipe import build_recipe

    cifar = benchlib.SHARED_CIFAR10
    if not (cifar / "train").is_dir():
        return [["(no ../shared/data/cifar10 here)", "", ""]]
    rows = []
    per_class = 50 if quick else None
    with (
        tempfile.TemporaryDirectory() as cache,
        initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"),
    ):
        for mode in ("true", "false"):
            overrides = [
                "dataset=imagefolder",
                f"dataset.root={cifar}",
                "model=cnn",
                "trainer.batch_size=128",
                f"dataset.in_memory={mode}",
            ]
            if per_class:
                overrides.append(f"dataset.subset_per_class={per_class}")
            cfg = compose(config_name="config", overrides=overrides)
            data = load_dataset(cfg.dataset, cache)
            engine = Engine(build_recipe(cfg, torch.device("cpu")), data, epochs=1, seed=0)
            samples = data.train_y.numel()
            started = time.perf_counter()
            engine.train_epoch(0, torch.randperm(samples, generator=torch.Generator().manual_seed(0)))
            seconds = time.perf_counter() - started
            label = (
                "in memory (decoded once, cached)"
                if mode == "true"
                else f"streamed ({engine.train_data.inputs.workers} workers)"
            )
            rows.append([label, f"{samples:,}", f"{samples / seconds:,.0f}"])
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--old-tree", type=Path, help="an earlier checkout to measure side by side (PYTHONPATH)"
    )
    parser.add_argument(
        "--imagenet", action="store_true", help="also the N=1,281,167 x C=1,000 point (minutes)"
    )
    parser.add_argument(
        "--work", type=Path, help="where trajectories go (default: a temporary folder; needs ~4 GB)"
    )
    args = parser.parse_args()
    benchlib.apply_threads(args)
    sizes = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.work))
    try:
        rows, results = scoring_rows(sizes, args.old_tree, work)
        text = benchlib.table(
            [
                "importance",
                "code and store",
                "peak RSS (GB)",
                "store on disk (GB)",
                "compute (s)",
                "max rel. diff",
            ],
            rows,
        )
        text += f"\n\nbaseline peak RSS (imports only): {results['baseline']['peak_rss_gb']:.2f} GB; full store written in {results['write_full_s']:.0f} s"
        if args.imagenet and not args.quick:
            point = imagenet_point(work)
            results["imagenet"] = point
            text += (
                f"\n\nImageNet size, AUM over a reduced store: {IMAGENET['samples']:,} samples x {IMAGENET['classes']:,} classes x "
                f"{IMAGENET['epochs']} epochs logged in {point['write_s']:.0f} s; store {point['store_gb']:.2f} GB "
                f"(the full store: {point['full_store_gb']:.0f} GB); AUM computed in {point['seconds']:.1f} s, peak RSS {point['peak_rss_gb']:.2f} GB"
            )
        stream = data_path(args.quick)
        results["data_path"] = stream
        text += "\n\n" + benchlib.table(["data path", "training images", "images/s (one epoch, cnn)"], stream)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    title = f"Scoring at scale: N={sizes['samples']:,}, C={sizes['classes']}, {sizes['epochs']} epochs (TDDS window {sizes['window']})"
    results["sizes"] = sizes
    benchlib.report(args, title, text, results)
    for name in IMPORTANCES:
        for side, result in results[name].items():
            if isinstance(result, dict) and result.get("max_rel_diff", 0) > 1e-5:
                raise SystemExit(
                    f"{name} ({side}) differs from the full store's scores: {result['max_rel_diff']}"
                )


if __name__ == "__main__":
    main()
