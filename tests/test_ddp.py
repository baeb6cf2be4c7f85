"""Distributed data parallel through torchrun: 2 CPU processes (gloo), 2 epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from datacull.distributed import DistContext, check_same_on_every_rank

from .conftest import metrics_without_timing

SETUP = ["trainer.strategy=ddp", "trainer.epochs=2", "trainer.num_threads=1", "trainer.progress=log"]


def env_for(root: Path) -> dict[str, str]:
    """The environment of a launch whose run folders and caches go under ``root``."""
    return {
        **os.environ,
        "DATACULL_OUTPUT_DIR": str(root / "outputs"),
        "DATACULL_CACHE_DIR": str(root / "cache"),
    }


def torchrun(tmp_path: Path, *overrides: str) -> Path:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "datacull",
        "train",
        *SETUP,
        *overrides,
    ]
    result = subprocess.run(
        command, cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [path for path in (tmp_path / "outputs" / "runs").iterdir()]  # one folder, written by rank 0
    return run


@pytest.mark.slow
def test_static_method_scores_on_both_ranks_and_trains_each_kept_sample_once_per_epoch(tmp_path):
    run = torchrun(tmp_path, "importance=aum", "sampler=ccs", "importance.trajectory_length=2")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    # per-sample metrics of both ranks reached the scoring trajectory: every sample seen in every epoch
    for seen in sorted((tmp_path / "cache" / "scoring").glob("*/logits/epoch*.seen.npy")):
        assert np.load(seen).all(), seen
    counts = pd.read_csv(run / "samples.csv")["times_selected"]
    kept = int(pd.read_csv(run / "metrics.csv")["subset_size"].iloc[0])
    assert set(counts.unique()) == {0, 2} and int((counts == 2).sum()) == kept  # disjoint shards, full cover
    assert summary["samples_trained"] == 2 * kept


@pytest.mark.slow
def test_dynamic_method_shards_cover_each_epochs_subset_exactly_once(tmp_path):
    run = torchrun(tmp_path, "importance=rcap", "sampler=rcap")
    summary = json.loads((run / "summary.json").read_text())
    counts = pd.read_csv(run / "samples.csv")["times_selected"]
    assert summary["status"] == "completed" and counts.max() <= 2
    assert counts.sum() == summary["samples_trained"] == pd.read_csv(run / "metrics.csv")["subset_size"].sum()
    assert {path.name for path in run.iterdir()} >= {
        "summary.json",
        "metrics.csv",
        "checkpoint.pt",
        "train.log",
    }


def _compare_subsets(rank: int, store: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    context = DistContext(rank, 2, rank)
    check_same_on_every_rank(context, torch.arange(5), "identical subsets")
    try:
        check_same_on_every_rank(context, torch.arange(5) + rank, "the subset")
        outcome = "no error"
    except RuntimeError as error:
        outcome = str(error)
    Path(results, f"{rank}.txt").write_text(outcome)
    dist.destroy_process_group()


def test_ranks_that_select_different_subsets_are_stopped(tmp_path):
    mp.spawn(_compare_subsets, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        assert "ranks disagree on the subset" in (tmp_path / f"{rank}.txt").read_text()


def test_ddp_without_torchrun_says_how_to_launch(tmp_path):
    from datacull.distributed import setup
    from datacull.errors import InputError

    with pytest.raises(InputError, match="torchrun --standalone --nproc_per_node"):
        setup("ddp", "cpu")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_nodes(root: Path, *arguments: str) -> list[subprocess.Popen]:
    """``torchrun --nnodes=2 --nproc_per_node=1 ... -m datacull <arguments>`` started once per node (both on this
    machine, gloo)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc_per_node=1",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
    ]
    return [
        subprocess.Popen(
            [*command, f"--node_rank={rank}", "-m", "datacull", *arguments],
            cwd=root,
            env=env_for(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]


def kill_node(node: subprocess.Popen) -> None:
    """SIGKILL a node: its torchrun agent and every process under it (torchrun starts each worker in a session of
    its own, so killing the agent's process group would leave the worker training)."""
    import signal

    def descendants(pid: int) -> list[int]:
        children = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            children += [int(child) for child in (task / "children").read_text().split()]
        return children + [grandchild for child in children for grandchild in descendants(child)]

    for pid in [node.pid, *descendants(node.pid)]:
        os.kill(pid, signal.SIGKILL)
    node.wait()


def wait_nodes(nodes: list[subprocess.Popen]) -> None:
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]


@pytest.mark.slow
def test_two_nodes_of_one_process_each_train_one_run(tmp_path):
    """``torchrun --nnodes=2`` started once per node (here both on this machine, gloo): one run folder, written by
    the global rank 0, with world_size 2: how a cluster launches it (docs/scaling.md, "Several machines")."""
    wait_nodes(start_nodes(tmp_path, "train", *SETUP, "importance=rcap", "sampler=rcap"))
    summaries = [json.loads(path.read_text()) for path in (tmp_path / "outputs").rglob("summary.json")]
    assert len(summaries) == 1 and summaries[0]["status"] == "completed" and summaries[0]["world_size"] == 2


@pytest.mark.slow
def test_a_node_killed_mid_run_stops_the_other_and_both_resume_to_the_uninterrupted_result(tmp_path):
    """A cluster loses a machine: the surviving node stops (it does not wait on the dead one for hours), and the
    same two torchrun commands with ``resume`` finish the run exactly as an uninterrupted one."""
    import time

    setup = [
        *(o for o in SETUP if not o.startswith("trainer.epochs=")),
        "trainer.epochs=6",
        "trainer.batch_size=16",
    ]
    arguments = [*setup, "importance=rcap", "sampler=rcap"]
    for name in ("reference", "killed"):
        (tmp_path / name).mkdir()
    reference, killed = tmp_path / "reference" / "run", tmp_path / "killed" / "run"
    wait_nodes(start_nodes(tmp_path / "reference", "train", *arguments, f"hydra.run.dir={reference}"))

    nodes = start_nodes(tmp_path / "killed", "train", *arguments, f"hydra.run.dir={killed}")
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists() and nodes[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert nodes[1].poll() is None, "the run ended before a node could be killed"
    kill_node(nodes[1])  # the whole second machine: its torchrun agent and its worker
    # the survivor stops within two minutes, rather than waiting on the dead node, and says how to continue
    survivor = nodes[0].communicate(timeout=120)[0]
    assert nodes[0].returncode != 0, survivor[-2000:]
    assert "error: rank 0 lost another rank of the run" in survivor, survivor[-2000:]
    assert f"-m datacull resume {killed}" in survivor
    assert json.loads((killed / "summary.json").read_text())["status"] in ("running", "failed")
    rows = len(pd.read_csv(killed / "metrics.csv"))
    assert 1 <= rows < 6

    wait_nodes(start_nodes(tmp_path / "killed", "resume", str(killed)))
    pd.testing.assert_frame_equal(metrics_without_timing(killed), metrics_without_timing(reference))
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["test_acc"] == json.loads((reference / "summary.json").read_text())["test_acc"]
