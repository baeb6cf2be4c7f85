"""What the benchmark scripts share: timing statistics, the machine's description, tables and result files.

A benchmark reports the median of several runs with the min and max, so that a noisy (shared) machine shows
as a wide range rather than as a wrong number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: CIFAR-10 as an ImageFolder tree beside the checkout (../shared/README.md), where the benchmarks read it
SHARED_CIFAR10 = REPO.parent / "shared" / "data" / "cifar10"


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--quick", action="store_true", help="tiny sizes, 1 repeat: checks that it runs and agrees"
    )
    result.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    result.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    result.add_argument("--json", type=Path, help="write the results as JSON to this file")
    result.add_argument("--markdown", type=Path, help="write the results table as Markdown to this file")
    return result


def apply_threads(args: argparse.Namespace) -> None:
    """Use ``--threads`` CPU threads; a busy machine runs faster and steadier with fewer than its cores."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def time_calls(
    function: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None
) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``function`` (``setup`` runs untimed before each)."""
    seconds = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "runs": len(seconds),
    }


def machine() -> dict[str, Any]:
    """CPU model, core count, Python and torch versions, and the load when measured (the box may be shared)."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def verdict(met: bool, quick: bool) -> str:
    """Whether a goal was met; tiny ``--quick`` sizes say nothing about speed, so they are not judged."""
    return "not judged (--quick)" if quick else ("met" if met else "MISSED")


def fmt_seconds(value: float) -> str:
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.3f} s"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def require_same_weights(weight_diff: float, what: str) -> None:
    """A timing compares two arms only if they trained the same thing: stop, naming ``what``, when their final
    weights differ (after the results are written, so the numbers can still be read)."""
    if not weight_diff < 1e-4:
        raise SystemExit(f"the plain loop and {what} trained different weights (max diff {weight_diff})")


def report(args: argparse.Namespace, title: str, text: str, results: dict[str, Any]) -> None:
    """Print the table and write the JSON / Markdown files asked for."""
    info = machine()
    header = (
        f"{title}\n{info['date']}  {info['cpu']} ({info['cores']} cores), torch {info['torch']}, "
        f"load {info['load_average_1m']}\n"
    )
    print(header + "\n" + text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, **results}, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(f"### {title}\n\n`{info['command']}`\n\n{header}\n{text}\n")


def fmt_summary(stat: dict[str, float]) -> str:
    """A :func:`summary` as ``median (min–max)``."""
    return f"{fmt_seconds(stat['median_s'])} ({fmt_seconds(stat['min_s'])}–{fmt_seconds(stat['max_s'])})"


def plain_sgd(cfg: Any, model: Any) -> Any:
    """The SGD optimizer of ``model`` with ``cfg.optimizer``'s settings, built by hand."""
    import torch

    return torch.optim.SGD(
        model.parameters(),
        lr=cfg.optimizer.lr,
        momentum=cfg.optimizer.momentum,
        nesterov=cfg.optimizer.nesterov,
        weight_decay=cfg.optimizer.weight_decay,
    )


def plain_epochs(model: Any, optimizer: Any, epochs: Any) -> list[float]:
    """What a user writes by hand: for each epoch's ``(inputs, labels)`` batches on the model's device, forward,
    cross-entropy, backward, step. Seconds per epoch, each ending with a wait for the device, as the runner's
    end-of-epoch sync does."""
    import torch.nn.functional as F

    seconds = []
    for batches in epochs:
        start = time.perf_counter()
        model.train()
        for inputs, labels in batches:
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loss.item()
        seconds.append(time.perf_counter() - start)
    return seconds


def runner_epoch_times(cfg: Any, run_dir: Path) -> list[float]:
    """``datacull.runner.train`` on ``cfg``: seconds between consecutive epochs' ends, the first and the last left
    out (everything done per epoch counts: sampler, metrics, checkpoint)."""
    from datacull import runner
    from datacull.observers import ProgressDisplay

    ends = []
    original = ProgressDisplay.epoch_done

    def record(self, row):
        original(self, row)
        ends.append(time.perf_counter())

    ProgressDisplay.epoch_done = record
    try:
        runner.train(cfg, run_dir=run_dir)
    finally:
        ProgressDisplay.epoch_done = original
    return [later - earlier for earlier, later in zip(ends[:-2], ends[1:-1], strict=True)]
