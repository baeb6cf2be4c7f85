"""GPU smoke test: every CUDA path of datacull once, in about three minutes on one GPU; PASS/FAIL per path.

    python scripts/gpu_smoke.py            # prints SKIP and exits 0 on a machine without CUDA

Paths: the default run; a CNN with AMP and a static scoring run (fp32 logged logits); torch.compile with InfoBatch
(batch sizes change: recompiles are counted); MetriQ's query run; a run killed mid-epoch and resumed (compared with
an uninterrupted one under trainer.deterministic=true); the Lightning callback under bf16-mixed; and, with two GPUs,
a 2-process DDP run through torchrun. Each runs in its own process on CIFAR-sized synthetic-free data: the offline
digits set, and ../shared/data/cifar10 when it is there (a 2,000-image subset).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import REPO
from benchlib import SHARED_CIFAR10 as CIFAR10

CUDA = ["trainer.device=cuda", "trainer.progress=log"]
CIFAR = (
    ["dataset=imagefolder", f"dataset.root={CIFAR10}", "dataset.subset_per_class=200", "model=cnn"]
    if (CIFAR10 / "train").is_dir()
    else ["model=cnn", "model.width=16"]
)


def run(
    args: list[str], work: Path, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATACULL_OUTPUT_DIR": str(work / "outputs"), **(env or {})}
    return subprocess.run(args, cwd=work, env=environment, capture_output=True, text=True, timeout=timeout)


def datacull(*args: str, work: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    from datacull.launch import datacull_command

    return run(datacull_command(*args), work, env)


def summaries(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.rglob("summary.json"))]


def check_completed(result: subprocess.CompletedProcess, work: Path) -> str:
    if result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr.strip().splitlines()[-1:]}")
    done = summaries(work / "outputs")
    if not done or any(s["status"] != "completed" for s in done):
        raise AssertionError(f"summaries: {[s.get('status') for s in done]}")
    return f"test_acc {done[-1]['test_acc']:.3f}"


def default_run(work: Path) -> str:
    return check_completed(datacull("train", *CUDA, work=work), work)


def amp_static(work: Path) -> str:
    result = datacull(
        "train",
        *CUDA,
        *CIFAR,
        "trainer.amp=true",
        "importance=aum",
        "sampler=ccs",
        "trainer.epochs=3",
        work=work,
    )
    detail = check_completed(result, work)
    logits = next((work / "outputs" / "cache" / "scoring").glob("*/logits/epoch0.npy"))
    import numpy as np

    if np.load(logits).dtype != np.float32:
        raise AssertionError("logged logits are not float32")
    return detail


def compile_infobatch(work: Path) -> str:
    result = datacull(
        "train",
        *CUDA,
        *CIFAR,
        "trainer.compile=true",
        "sampler=infobatch",
        "trainer.epochs=4",
        work=work,
        env={"TORCH_LOGS": "recompiles"},
    )
    detail = check_completed(result, work)
    recompiles = len(re.findall(r"[Rr]ecompiling", result.stderr))
    return f"{detail}; {recompiles} recompile(s) (batch dimension dynamic)"


def metriq(work: Path) -> str:
    return check_completed(
        datacull("train", *CUDA, *CIFAR, "sampler=metriq", "trainer.epochs=3", work=work), work
    )


def kill_and_resume(work: Path) -> str:
    args = ["train", *CUDA, *CIFAR, "trainer.epochs=6", "trainer.deterministic=true", "trainer.batch_size=32"]
    reference = datacull(*args, "output_dir=" + str(work / "reference"), work=work)
    if reference.returncode != 0:
        raise AssertionError(f"uninterrupted run failed: {reference.stderr.strip().splitlines()[-1:]}")
    environment = {**os.environ, "DATACULL_OUTPUT_DIR": str(work / "killed")}
    process = subprocess.Popen(
        [sys.executable, "-m", "datacull", *args],
        cwd=work,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = None
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        metrics = list((work / "killed").rglob("metrics.csv"))
        if metrics and len(metrics[0].read_text().splitlines()) >= 3:  # two epochs done
            folder = metrics[0].parent
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    process.wait()
    if folder is None:
        raise AssertionError("the run ended before it could be killed")
    resumed = datacull("resume", str(folder), work=work)
    if resumed.returncode != 0:
        raise AssertionError(f"resume failed: {resumed.stderr.strip().splitlines()[-1:]}")
    expected = [s["test_acc"] for s in summaries(work / "reference")]
    got = json.loads((folder / "summary.json").read_text())["test_acc"]
    if [got] != expected:
        raise AssertionError(f"resumed test_acc {got} != uninterrupted {expected}")
    return f"test_acc {got:.4f} equals the uninterrupted run's"


#: docs/lightning.md's Trainer line, and what the smoke test runs instead: the same example on one GPU in bf16
CPU_TRAINER = "trainer = L.Trainer(max_epochs=3, callbacks=[DataCullCallback(loader, importance)])"
GPU_TRAINER = (
    'trainer = L.Trainer(max_epochs=3, accelerator="gpu", devices=1, precision="bf16-mixed", '
    "callbacks=[DataCullCallback(loader, importance)], enable_progress_bar=False, logger=False)"
)


def lightning_example() -> str:
    """docs/lightning.md's example as printed (not a copy of it), its Trainer on one GPU in bf16."""
    page = (REPO / "docs" / "lightning.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    block = next(block for block in blocks if "DataCullCallback(loader, importance)" in block)
    if CPU_TRAINER not in block:
        raise AssertionError("docs/lightning.md's Trainer line changed: update CPU_TRAINER in gpu_smoke.py")
    checks = (
        'assert loader.num_resamples == 3, loader.num_resamples\nprint("resampled", loader.num_resamples)\n'
    )
    return block.replace(CPU_TRAINER, GPU_TRAINER) + checks


def lightning_bf16(work: Path) -> str:
    result = run([sys.executable, "-c", lightning_example()], work)
    if result.returncode != 0:
        raise AssertionError(result.stderr.strip().splitlines()[-1:])
    return result.stdout.strip().splitlines()[-1]


def ddp_two_gpus(work: Path) -> str:
    import torch

    if torch.cuda.device_count() < 2:
        return "SKIP (one GPU)"
    from datacull.launch import torchrun_datacull

    args = torchrun_datacull(
        2,
        "train",
        "trainer.strategy=ddp",
        "trainer.device=cuda",
        "trainer.progress=log",
        *CIFAR,
        "importance=aum",
        "sampler=ccs",
        "trainer.epochs=2",
    )
    return check_completed(run(args, work), work)


PATHS = [default_run, amp_static, compile_infobatch, metriq, kill_and_resume, lightning_bf16, ddp_two_gpus]


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("SKIP: no CUDA device here (nothing to smoke-test)")
        return 0
    print(
        f"GPU: {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible; torch {torch.__version__}"
    )
    failures = 0
    started = time.perf_counter()
    for path in PATHS:
        with tempfile.TemporaryDirectory(prefix=f"smoke-{path.__name__}-") as folder:
            begin = time.perf_counter()
            try:
                detail = path(Path(folder))
                verdict = "SKIP" if detail.startswith("SKIP") else "PASS"
            except Exception as error:  # report every path, whatever failed
                verdict, detail = "FAIL", str(error)
                failures += 1
            print(f"{verdict}  {path.__name__:<18} {time.perf_counter() - begin:6.1f}s  {detail}", flush=True)
    print(f"{len(PATHS) - failures} of {len(PATHS)} paths passed in {time.perf_counter() - started:.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
