"""Files other processes read are replaced atomically: a crash leaves the old version or the new one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from datacull import outputs

WRITER = """
import sys
from datacull.outputs import atomic_write_json
payloads = [{"version": v, "padding": "x" * 2_000_000} for v in ("old", "new")]
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    for payload in payloads:
        atomic_write_json(sys.argv[1], payload)
"""


def test_a_write_interrupted_by_an_error_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    outputs.atomic_write_json(target, {"status": "running"})

    def crash(_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        outputs.atomic_write_json(target, {"status": "completed"})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_sigkill_at_any_moment_leaves_a_whole_file(tmp_path):
    target = tmp_path / "summary.json"
    for attempt in range(5):
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.03 * attempt)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert json.loads(target.read_text())["version"] in {"old", "new"}


def test_npy_and_checkpoint_writes_round_trip(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    outputs.atomic_save_npy(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)
    outputs.atomic_torch_save(tmp_path / "c.pt", {"epoch": 3})
    import torch

    assert torch.load(tmp_path / "c.pt")["epoch"] == 3
    assert oct((tmp_path / "a.npy").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
