"""The library's per-epoch cost under DDP: the loop of docs/scaling.md against the same loop with a plain
``DistributedSampler``, on 2 CPU ranks (gloo), started by torchrun.

Both arms train the same MLP (3,072 -> 256 -> 10, a CIFAR-10-sized input) on the same synthetic data, batch 64 per
rank, SGD, each its own ``DistributedDataParallel`` model, one torch thread per rank. The library arm is the docs'
loop: ``RCAPDataLoader`` (30% removed, resampled every epoch from RCAP's importance), per-sample losses logged into a
``DCLogger`` that merges the ranks, RCAP reading and deleting each merged epoch. The plain arm trains a fixed random
subset of the same size through ``DataLoader(Subset(...), sampler=DistributedSampler(...))`` and logs nothing. An
epoch's time runs from a barrier before it to a barrier after it (the slowest rank), so it holds everything the
library adds: the merge and write of the previous epoch's log, the importance, the resample and the sharding. The
arms alternate epoch by epoch (which goes first alternates too); the first epoch of each is a warm-up.

    python scripts/bench_ddp_library.py             # N=8,192, 10 timed epochs per arm, about a minute
    python scripts/bench_ddp_library.py --quick     # seconds; checks both arms train as many samples per epoch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

sys.path.insert(0, str(benchlib.REPO))

FULL = {"samples": 8192, "features": 3072, "hidden": 256, "batch": 64, "epochs": 10}
QUICK = {"samples": 512, "features": 64, "hidden": 32, "batch": 32, "epochs": 2}
PRUNING_RATE = 0.3
GOAL = 1.05


def worker(sizes: dict[str, int], result_file: Path, work: Path) -> None:
    """One rank of the benchmark (started by torchrun); rank 0 writes the timings."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from datacull.methods.RCAP import RCAPDataLoader, RCAPImportance
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset

    from datacull import DCDataset, DCLogger

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    n, batch = sizes["samples"], sizes["batch"]
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (n,), generator=generator)
    inputs = torch.randn(n, sizes["features"], generator=generator) + 0.1 * labels[:, None]
    data = TensorDataset(inputs, labels)

    def model():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(sizes["features"], sizes["hidden"]),
            torch.nn.ReLU(),
            torch.nn.Linear(sizes["hidden"], 10),
        )
        ddp = DistributedDataParallel(net)
        return ddp, torch.optim.SGD(ddp.parameters(), lr=0.05)

    dataset = DCDataset(data)
    logger = DCLogger(work / "loss", num_samples=n)
    importance = RCAPImportance(dataset, logger_object=logger, beta=0.25)
    loader = RCAPDataLoader(dataset, pruning_rate=PRUNING_RATE, batch_size=batch, seed=0)
    library_model, library_optimizer = model()

    kept = torch.randperm(n, generator=generator)[: loader.required_num_samples].tolist()
    fixed = Subset(data, kept)
    plain_loader = DataLoader(
        fixed, batch_size=batch, sampler=DistributedSampler(fixed, shuffle=True, seed=0)
    )
    plain_model, plain_optimizer = model()

    def plain_epoch(epoch: int) -> int:
        plain_loader.sampler.set_epoch(epoch)
        trained = 0
        for x, y in plain_loader:
            loss = F.cross_entropy(plain_model(x), y)
            loss.backward()
            plain_optimizer.step()
            plain_optimizer.zero_grad()
            trained += y.numel()
        return trained

    selection: dict[str, list[float]] = {"merge": [], "choose": []}

    def library_epoch(epoch: int) -> int:
        start = time.perf_counter()
        logger.flush()  # what compute_importance() does first (timed apart): merge and write the last epoch
        merged = time.perf_counter()
        loader.resample(importance.compute_importance())
        selection["merge"].append(merged - start)
        selection["choose"].append(time.perf_counter() - merged)
        trained = 0
        for x, y, index in loader:
            losses = F.cross_entropy(library_model(x), y, reduction="none")
            losses.mean().backward()
            library_optimizer.step()
            library_optimizer.zero_grad()
            logger.log_metric(epoch, index, losses.detach())
            trained += y.numel()
        return trained

    arms = {"plain": plain_epoch, "library": library_epoch}
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    samples: dict[str, list[int]] = {name: [] for name in arms}
    for epoch in range(sizes["epochs"] + 1):
        for name in sorted(arms, reverse=epoch % 2 == 1):
            dist.barrier()
            start = time.perf_counter()
            trained = arms[name](epoch)
            dist.barrier()
            if epoch:  # the first epoch of each arm warms up
                seconds[name].append(time.perf_counter() - start)
                counted = torch.tensor([trained])
                dist.all_reduce(counted)
                samples[name].append(int(counted))
    logger.flush()
    if dist.get_rank() == 0:
        result_file.write_text(
            json.dumps(
                {
                    "seconds": seconds,
                    "samples": samples,
                    "selection": {k: v[1:] for k, v in selection.items()},
                }
            )
        )
    dist.destroy_process_group()


def main() -> None:
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # one rank, started by torchrun
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.worker:
        worker(sizes, args.worker, args.worker.parent)
        return
    with tempfile.TemporaryDirectory(prefix="datacull-bench-ddp-") as folder:
        raw = Path(folder) / "raw.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        command += [__file__, "--worker", str(raw)] + (["--quick"] if args.quick else [])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(benchlib.REPO), os.environ.get("PYTHONPATH")])),
        }
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
        measured = json.loads(raw.read_text())
    samples = measured["samples"]
    if samples["plain"] != samples["library"]:
        raise SystemExit(f"the arms trained different numbers of samples per epoch: {samples}")
    stats = {name: benchlib.summary(values) for name, values in measured["seconds"].items()}
    ratio = stats["library"]["median_s"] / stats["plain"]["median_s"]
    merge, choose = (statistics.median(measured["selection"][part]) for part in ("merge", "choose"))
    rows = [
        [
            name,
            f"{benchlib.fmt_seconds(stats[name]['median_s'])} "
            f"({benchlib.fmt_seconds(stats[name]['min_s'])}–{benchlib.fmt_seconds(stats[name]['max_s'])})",
            f"{stats[name]['median_s'] / stats['plain']['median_s']:.3f}",
        ]
        for name in ("plain", "library")
    ]
    text = benchlib.table(["arm (2 ranks, gloo)", "epoch: median (min–max)", "÷ plain"], rows)
    text += (
        f"\n\n{samples['plain'][0]} samples per epoch on each arm, {len(measured['seconds']['plain'])} timed epochs; "
        f"library ÷ plain = {ratio:.3f} (goal ≤ {GOAL}: {benchlib.verdict(ratio <= GOAL, args.quick)}); of the "
        f"library's epoch, merging and writing the last epoch's log took {benchlib.fmt_seconds(merge)}, RCAP and "
        f"the resample {benchlib.fmt_seconds(choose)} (medians)\n"
    )
    results = {
        "sizes": sizes,
        "epoch_seconds": measured["seconds"],
        "samples": samples,
        "ratio": ratio,
        "selection_seconds": measured["selection"],
    }
    benchlib.report(args, "DCDataLoader + DCLogger under DDP vs a plain DistributedSampler", text, results)


if __name__ == "__main__":
    main()
