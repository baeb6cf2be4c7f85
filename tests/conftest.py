"""Fixtures every test gets: its own output and cache folders, and a root logger left as it found it. Helpers
live in ``tests/helpers.py``."""

from __future__ import annotations

import logging
import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Runs started by tests write under their own temporary folder, never into the checkout."""
    monkeypatch.setenv("DATACULL_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("DATACULL_CACHE_DIR", str(tmp_path / "cache"))
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _no_leaked_log_handlers():
    """A `datacull train` run in-process (CliRunner) leaves Hydra's job logging on the root logger: a console
    handler on the runner's captured stream, closed once the command returns, and the run's log file. A later
    test's log lines would then fail on the closed stream and print a traceback into that test's output."""
    before = set(logging.root.handlers)
    yield
    for handler in [h for h in logging.root.handlers if h not in before]:
        if not type(handler).__module__.startswith("_pytest"):  # pytest removes its own
            logging.root.removeHandler(handler)
            handler.close()
