"""``datacull`` in a subprocess, one way for the scripts and the tests: the command line, on one process or under
torchrun, and a run of it whose run folders and caches go under a folder of the caller's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def datacull_command(*arguments: str) -> list[str]:
    """``python -m datacull <arguments>`` through this interpreter."""
    return [sys.executable, "-m", "datacull", *arguments]


def torchrun_datacull(processes: int, *arguments: str) -> list[str]:
    """``torchrun --standalone --nproc_per_node=K -m datacull <arguments>`` on this machine."""
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
    ]
    return [*launcher, "-m", "datacull", *arguments]


def run_datacull(
    command: list[str],
    *,
    outputs: Path | None = None,
    env: dict[str, str] | None = None,
    capture: bool = True,
    timeout: float | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``command`` (from :func:`datacull_command` or :func:`torchrun_datacull`); with ``outputs``, its run
    folders go to ``outputs/outputs`` and its caches to ``outputs/cache``; ``env`` adds variables."""
    environment = dict(os.environ)
    if outputs is not None:
        environment.update(
            DATACULL_OUTPUT_DIR=str(Path(outputs) / "outputs"),
            DATACULL_CACHE_DIR=str(Path(outputs) / "cache"),
        )
    environment.update(env or {})
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=capture, text=True, timeout=timeout
    )
