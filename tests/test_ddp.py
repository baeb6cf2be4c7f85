"""Distributed data parallel through torchrun: 2 CPU processes (gloo), 2 epochs."""

from __future__ import annotations

import json
import math
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
from hypothesis import given, settings
from hypothesis import strategies as st

from datacull.distributed import (
    DistContext,
    check_same_on_every_rank,
    rank_share,
    rank_share_size,
    rank_slice,
)
from datacull.launch import torchrun_datacull

from .helpers import metrics_without_timing

SETUP = ["trainer.strategy=ddp", "trainer.epochs=2", "trainer.num_threads=1", "trainer.progress=log"]


def env_for(root: Path) -> dict[str, str]:
    """The environment of a launch whose run folders and caches go under ``root``."""
    return {
        **os.environ,
        "DATACULL_OUTPUT_DIR": str(root / "outputs"),
        "DATACULL_CACHE_DIR": str(root / "cache"),
    }


def torchrun(tmp_path: Path, *overrides: str) -> Path:
    command = torchrun_datacull(2, "train", *SETUP, *overrides)
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


@pytest.mark.slow
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


# ------------------------------------------------------------------------ the library in a user's own DDP script
@pytest.mark.slow
def test_the_docs_library_loop_under_torchrun_trains_disjoint_shares_of_one_subset(tmp_path):
    """docs/scaling.md's loop, as printed, on 2 CPU processes (gloo): every epoch both ranks choose the same subset,
    train disjoint shares covering it in the same number of steps, and read back a merged log that saw all of it."""
    from .ddp_runs import check_ranks, docs_block, launch, torchrun

    (tmp_path / "train.py").write_text(docs_block("init_process_group"))
    out = launch(tmp_path, *torchrun("-m", "tests.ddp_runs", "script", "train.py", "out"))
    ranks = check_ranks(out)
    subsets = ranks[0]["subsets"]
    assert list(subsets) == ["0", "1", "2"] and all(
        len(subset) == round(0.7 * 1797) for subset in subsets.values()
    )
    assert subsets["0"] != subsets["1"] != subsets["2"]  # RCAP chose again from the merged losses
    assert sorted(path.name for path in (tmp_path / "trajectories" / "loss").iterdir()) == [
        "epoch2.npy",
        "epoch2.seen.npy",
    ]  # RCAP deleted the epochs it read, once both ranks had read them


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(0, 400),
    world=st.integers(1, 8),
    batch_size=st.integers(1, 24),
    drop_last=st.booleans(),
)
def test_rank_shares_are_disjoint_cover_the_order_and_give_every_rank_the_same_steps(
    count, world, batch_size, drop_last
):
    order = torch.randperm(count, generator=torch.Generator().manual_seed(count)) + 1000
    contexts = [DistContext(rank, world) for rank in range(world)]
    shares = [rank_share(order, context, batch_size, drop_last) for context in contexts]
    assert [share.numel() for share in shares] == [
        rank_share_size(count, context, batch_size, drop_last) for context in contexts
    ]
    if world == 1:  # one process: the order as it is (the DataLoader drops an incomplete last batch itself)
        assert torch.equal(shares[0], order)
        return
    steps = {math.ceil(share.numel() / batch_size) for share in shares}
    assert len(steps) == 1  # DDP cannot wait for a rank with one batch less
    (num_steps,) = steps
    # step k of the ranks, in rank order, is the k-th global batch of batch_size * world samples of the order
    walked = torch.cat(
        [order[:0]] + [share.split(batch_size)[step] for step in range(num_steps) for share in shares]
    )
    if drop_last:
        assert all(share.numel() % batch_size == 0 for share in shares)
        assert torch.equal(walked, order[: count - count % (batch_size * world)])
    else:
        assert torch.equal(walked[:count], order)
        padding = walked[
            count:
        ]  # only where a last global batch is smaller than the world: its first samples
        assert padding.numel() < world and torch.equal(
            padding, order[torch.arange(padding.numel()) % max(count, 1)]
        )
        assert count == 0 or min(share.numel() for share in shares) > 0


@given(count=st.integers(0, 100), world=st.integers(1, 9))
def test_rank_slice_is_the_runners_tensor_split(count, world):
    batch = torch.arange(count)
    for rank, part in enumerate(batch.tensor_split(world)):
        assert torch.equal(batch[rank_slice(count, DistContext(rank, world))], part)


def _library_under_a_group(rank: int, store: str, folder: str, pickled) -> None:
    """On each rank: a loader built before the process group (its seed drawn per rank), a merged logger, two
    epochs; what the rank saw goes to folder/rank.json."""
    from datacull import DCLogger
    from datacull.catalog import get_sampler
    from datacull.logger import epoch_paths

    from .helpers import tensor_dataset

    torch.manual_seed(rank)  # each rank draws a seed of its own
    dataset = tensor_dataset([0, 1, 2] * 7)  # 21 samples
    loader = get_sampler("rs2")(dataset, pruning_rate=0.3, batch_size=2)  # keeps 15; drew its order already
    drawn = loader.seed
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    logger = DCLogger(Path(folder) / "loss", num_samples=len(dataset))
    record = {"drawn": drawn, "epochs": []}
    for epoch in range(2):
        subset = loader.resample()
        batches = [index.tolist() for _, _, index in loader]
        for index in batches:
            logger.log_metric(epoch, torch.tensor(index), torch.full((len(index),), float(rank)))
        values, seen = logger.load_epoch(epoch, len(dataset))  # merged on first read, on every rank
        record["epochs"].append(
            {
                "subset": sorted(subset.tolist()),
                "batches": batches,
                "length": len(loader),
                "seen": np.flatnonzero(seen).tolist(),
                "from": values[seen].tolist(),
            }
        )
    record["seed"] = loader.seed
    logger.release_epoch(0)  # as an importance with flush=True does: kept until every rank has read it
    record["kept_until_next_write"] = epoch_paths(logger.trajectory_dir, 0)[0].exists()
    logger.flush()
    record["deleted_then"] = not epoch_paths(logger.trajectory_dir, 0)[0].exists()
    record["pickled_rng"] = pickled.rng.get_state().tolist()
    Path(folder, f"{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


@pytest.mark.slow
def test_a_loader_and_logger_under_a_process_group_share_one_subset_and_merge_the_ranks(tmp_path):
    """Two spawned gloo ranks: the loader (built before the group, seeds drawn per rank) takes rank 0's seed, both
    ranks walk disjoint shares of one subset in the same number of batches, each reads the merged epoch, a read
    epoch is deleted only at the next write, and a loader pickled into the processes (ddp_spawn) arrives whole."""
    from .helpers import tensor_dataset

    pickled = get_sampler_for_pickling(tensor_dataset([0, 1] * 5))
    mp.spawn(
        _library_under_a_group,
        args=(str(tmp_path / "store"), str(tmp_path), pickled),
        nprocs=2,
        join=True,
    )
    ranks = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)]
    assert (
        ranks[0]["drawn"] != ranks[1]["drawn"] and ranks[0]["seed"] == ranks[1]["seed"] == ranks[0]["drawn"]
    )
    for epoch in range(2):
        first, second = (record["epochs"][epoch] for record in ranks)
        assert first["subset"] == second["subset"] and len(first["subset"]) == 15
        shares = [index for record in (first, second) for batch in record["batches"] for index in batch]
        assert sorted(shares) == first["subset"]  # disjoint, covering
        assert len(first["batches"]) == len(second["batches"]) == first["length"] == second["length"] == 4
        assert first["seen"] == second["seen"] == first["subset"]
        assert sorted(first["from"]) == sorted(second["from"]) and set(first["from"]) == {0.0, 1.0}
    assert ranks[0]["epochs"][0]["subset"] != ranks[0]["epochs"][1]["subset"]
    assert all(record["kept_until_next_write"] and record["deleted_then"] for record in ranks)
    assert ranks[0]["pickled_rng"] == ranks[1]["pickled_rng"] == pickled.rng.get_state().tolist()


def get_sampler_for_pickling(dataset):
    from datacull.catalog import get_sampler

    loader = get_sampler("random")(dataset, pruning_rate=0.5, batch_size=2, seed=3)
    loader.rng.manual_seed(11)  # a state the pickle must carry
    return loader


def _loud_errors(rank: int, store: str, folder: str) -> None:
    from datacull.catalog import get_sampler
    from datacull.errors import InputError

    from .helpers import tensor_dataset

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    dataset = tensor_dataset([0, 1] * 10)
    outcomes = []
    try:
        get_sampler("random")(dataset, pruning_rate=0.5, batch_size=2, seed=rank)
    except InputError as error:
        outcomes.append(str(error))
    loader = get_sampler("topk")(dataset, pruning_rate=0.5, batch_size=2, seed=0)
    try:
        loader.resample(torch.arange(20.0) * (1 if rank == 0 else -1))  # each rank scored on its own
    except RuntimeError as error:
        outcomes.append(str(error))
    loader = get_sampler("random")(dataset, pruning_rate=0.5, batch_size=4, drop_last=True, seed=0)
    try:
        loader.resample()  # 10 samples: one global batch of 2 ranks x 4
        outcomes.append("trained")
    except InputError as error:
        outcomes.append(str(error))
    loader = get_sampler("random")(dataset, pruning_rate=0.5, batch_size=6, drop_last=True, seed=0)
    try:
        loader.resample()
    except InputError as error:
        outcomes.append(str(error))
    Path(folder, f"{rank}.txt").write_text("\n".join(outcomes))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_that_would_train_different_subsets_all_stop_with_one_line(tmp_path):
    mp.spawn(_loud_errors, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        seeds, scores, fits, empty = (tmp_path / f"{rank}.txt").read_text().splitlines()
        assert "got seeds [0, 1] on ranks 0..1" in seeds and "pass the same seed=" in seeds
        assert "ranks disagree on the subset" in scores and "same scores" in scores
        assert fits == "trained"
        assert "fewer than batch_size=6 x 2 ranks with drop_last=True" in empty
