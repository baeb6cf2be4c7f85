"""Distributed data parallel through torchrun: the few collectives the runner needs, in one place.

Under ``torchrun --nproc_per_node=K -m datacull train trainer.strategy=ddp``, every rank composes the same
config, loads the same data and builds the same sampler with the same seed, so every rank selects the same
subset (checked after each resample). Each global batch is split across ranks, so the shards of an epoch are
disjoint and cover the subset exactly once. Per-sample metrics are gathered to rank 0, which computes the
importance, broadcasts the scores and writes every file of the run.

The library (``DCDataLoader``, ``DCLogger``) and the Lightning callback find the process group a user's script
initialised (:func:`process_group`) and shard with the same rule (:func:`rank_slice`, :func:`rank_share`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .errors import InputError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def process_group(use: bool = True) -> DistContext:
    """The default process group this process belongs to, if one is initialised (by torchrun and
    ``init_process_group``, by Lightning, or by :func:`setup`) and ``use`` is set; otherwise :data:`SINGLE`."""
    if not (use and dist.is_available() and dist.is_initialized()):
        return SINGLE
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


#: How long a rank waits in a collective while another works alone (rank 0 training or reading the scoring cache,
#: computing importances): far above NCCL's 10-minute default, which a scoring run easily exceeds.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=6)


def setup(strategy: str, device_name: str) -> DistContext:
    """Join the process group torchrun prepared (gloo on CPU, nccl on CUDA), or run single-process. Each rank
    takes the GPU of its local rank, which must exist; an explicit ``cuda:N`` would put every rank on one GPU."""
    if strategy not in ("single", "ddp"):
        raise InputError(f"trainer.strategy must be single or ddp; got {strategy!r}")
    if strategy == "single":
        if launched_by_torchrun():
            raise InputError("this process was started by torchrun: add trainer.strategy=ddp")
        return SINGLE
    if not launched_by_torchrun():
        raise InputError(
            "trainer.strategy=ddp needs torchrun: torchrun --standalone --nproc_per_node=2 -m datacull train ..."
        )
    rank, world, local = (int(os.environ[key]) for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device_name.startswith("cuda:"):
        raise InputError(
            f"trainer.device={device_name} under trainer.strategy=ddp would put every rank on one GPU; use "
            "trainer.device=cuda (each rank takes the GPU of its local rank) and CUDA_VISIBLE_DEVICES to choose GPUs"
        )
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        visible = torch.cuda.device_count()
        if local >= visible:
            raise InputError(
                f"local rank {local} has no GPU: {visible} visible for --nproc_per_node={os.environ.get('LOCAL_WORLD_SIZE', '?')}; "
                "start at most one process per GPU, or trainer.device=cpu"
            )
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return DistContext(rank, world, local)


def collective_device() -> torch.device:
    """Where tensors of a collective must live: the rank's GPU under NCCL, the CPU under gloo."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def teardown(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


#: What a transport says when a peer process died mid-collective (gloo over TCP, NCCL).
_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "NCCL communicator was aborted")


def lost_a_peer(error: BaseException) -> bool:
    """Whether ``error`` means another rank stopped: the run cannot continue until every node is back."""
    return isinstance(error, dist.DistNetworkError) or any(text in str(error) for text in _PEER_LOST)


def broadcast_object(context: DistContext, value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not context.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_reduce_sum(context: DistContext, tensor: torch.Tensor) -> torch.Tensor:
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()


def gather_rows(
    context: DistContext, rows: torch.Tensor, counts: list[int] | None = None
) -> torch.Tensor | None:
    """Concatenate every rank's ``rows`` (same trailing shape, any count) on rank 0; None elsewhere. ``counts``,
    every rank's number of rows when the caller knows them already, saves a collective."""
    if not context.enabled:
        return rows
    if counts is None:
        count = torch.tensor([rows.shape[0]], device=rows.device)
        gathered_counts = [torch.zeros_like(count) for _ in range(context.world_size)]
        dist.all_gather(gathered_counts, count)
        counts = [int(c) for c in gathered_counts]
    largest = max(counts)
    padded = torch.zeros((largest, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    padded[: rows.shape[0]] = rows
    gathered = [torch.zeros_like(padded) for _ in range(context.world_size)]
    dist.all_gather(gathered, padded)
    if not context.is_main:
        return None
    return torch.cat([part[:n] for part, n in zip(gathered, counts, strict=True)])


def gather_objects(context: DistContext, value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not context.enabled:
        return [value]
    values = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values


def check_same_on_every_rank(
    context: DistContext,
    tensor: torch.Tensor,
    what: str,
    fix: str = "every rank must select the same subset (seeded sampler)",
) -> None:
    """Raise on every rank if ``tensor`` differs between ranks (e.g. the selected subset)."""
    if not context.enabled:
        return
    digest = hashlib.sha1(tensor.detach().cpu().numpy().tobytes()).hexdigest()
    if len(set(gather_objects(context, digest))) != 1:
        raise RuntimeError(f"ranks disagree on {what}: {fix}")


# ------------------------------------------------------------------------------------------------ sharding
def rank_slice(count: int, context: DistContext) -> slice:
    """Where this rank's part of a global batch of ``count`` samples lies: consecutive parts in rank order, the
    first ``count % world_size`` one sample longer (``tensor_split``'s rule). The parts are disjoint and cover the
    batch, and every rank has one, so every rank takes the same number of steps."""
    share, longer = divmod(count, context.world_size)
    start = context.rank * share + min(context.rank, longer)
    return slice(start, start + share + (context.rank < longer))


def _epoch_layout(count: int, world: int, batch_size: int, drop_last: bool) -> tuple[int, int]:
    """How many samples of an epoch's order the ranks walk together, and how many of them repeat its first ones."""
    step = batch_size * world
    tail = count % step
    if drop_last:
        return count - tail, 0
    padding = world - tail if 0 < tail < world else 0
    return count + padding, padding


def rank_share(order: torch.Tensor, context: DistContext, batch_size: int, drop_last: bool) -> torch.Tensor:
    """This rank's samples of an epoch's ``order``, for a loader that batches them ``batch_size`` at a time.

    Step k of every rank trains the k-th global batch of ``batch_size * world_size`` consecutive samples of
    ``order``, split by :func:`rank_slice`; so the ranks' shares are disjoint, cover ``order`` and give every rank
    the same number of batches (DDP would wait forever for a rank with one batch less). Only when the last global
    batch is smaller than the world size is it filled up with the first samples of ``order`` (fewer than
    ``world_size`` repeats, as ``DistributedSampler`` pads); ``drop_last`` drops the incomplete last global batch.
    """
    world = context.world_size
    if world == 1:
        return order
    total, padding = _epoch_layout(order.numel(), world, batch_size, drop_last)
    if padding:
        order = torch.cat([order, order[torch.arange(padding) % order.numel()]])
    full = total - total % (batch_size * world)
    steps = order[:full].view(-1, world, batch_size)[:, context.rank].reshape(-1)
    return torch.cat([steps, order[full:total][rank_slice(total - full, context)]])


def rank_share_size(count: int, context: DistContext, batch_size: int, drop_last: bool) -> int:
    """``rank_share(order, ...).numel()`` for an order of ``count`` samples, without drawing one."""
    if context.world_size == 1:
        return count
    total, _ = _epoch_layout(count, context.world_size, batch_size, drop_last)
    full = total - total % (batch_size * context.world_size)
    last = rank_slice(total - full, context)
    return full // context.world_size + last.stop - last.start


@contextlib.contextmanager
def worker_run_overrides():
    """Hydra overrides for this process: none on rank 0; on the other torchrun ranks a scratch run folder (rank 0
    alone writes the real one, whose path every rank receives) with quiet logging, removed afterwards."""
    if int(os.environ.get("RANK", "0")) == 0:
        yield []
        return
    scratch = tempfile.mkdtemp(prefix="datacull-rank")
    try:
        yield [f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra.job_logging.root.level=WARNING"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
