"""The CUDA paths' logic, exercised where it can be without a GPU: device decisions, state handling, dtype
conversions, collectives under gloo. What needs a GPU runs in scripts/gpu_smoke.py."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from typer.testing import CliRunner

from datacull import DCDataLoader, DCLogger, ImportanceScores
from datacull.cli import app
from datacull.datasets import ImageData
from datacull.distributed import COLLECTIVE_TIMEOUT
from datacull.engine import Engine, amp_dtype, channel_statistics
from datacull.errors import InputError
from datacull.outputs import capture_rng, restore_rng
from datacull.parts import configure_kernels
from datacull.recipe import build_recipe
from datacull.runner import train

from .helpers import compose_config, fast_config, tensor_dataset

CPU = torch.device("cpu")


def images(count: int = 16) -> ImageData:
    x = torch.randint(0, 256, (count, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    y = torch.arange(count) % 2
    return ImageData(x, y, x[:4], y[:4], classes=["a", "b"])


def test_rng_state_keeps_only_the_engine_devices_generator():
    state = capture_rng(CPU)
    assert "cuda" not in state  # never every visible GPU: a resume with fewer GPUs visible must work
    state["cuda"] = torch.zeros(8, dtype=torch.uint8)  # as written on a GPU machine
    restore_rng(state, CPU)  # a CPU run ignores it instead of failing


def test_a_checkpoint_from_another_device_type_is_refused_in_one_line(tmp_path):
    train(fast_config(tmp_path, "trainer.epochs=2"), tmp_path / "run")
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["device_type"] == "cpu"
    checkpoint["device_type"] = "cuda"
    torch.save(checkpoint, tmp_path / "run" / "checkpoint.pt")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    summary["status"] = "running"
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(app, ["resume", str(tmp_path / "run")])
    assert result.exit_code == 2 and "was written on cuda; this resume would run on cpu" in result.output
    assert result.output.strip().count("\n") == 0


def test_an_empty_grad_scaler_state_is_skipped():
    engine = Engine(build_recipe(compose_config(["model.hidden=8"]), CPU), images(), epochs=1, seed=0)
    state = engine.state_dict()
    assert state["scaler"] == {}  # no loss scaling on the CPU
    engine.load_state_dict(state)


def test_a_ddp_run_is_resumed_under_torchrun_only(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "checkpoint.pt").write_bytes(b"x")
    (run / "summary.json").write_text(
        json.dumps(
            {
                "status": "running",
                "importance": "rcap",
                "sampler": "rcap",
                "pruning_rate": 0.5,
                "dataset": "digits",
                "model": "mlp",
                "epochs": 2,
                "steps": None,
                "seed": 0,
                "run_dir": str(run),
                "world_size": 2,
                "started_at": "now",
            }
        )
    )
    result = CliRunner().invoke(app, ["resume", str(run)])
    assert result.exit_code == 2
    assert (
        "trained with 2 process(es), not 1: resume it with torchrun --standalone --nproc_per_node=2"
        in result.output
    )


def test_ddp_refuses_a_rank_without_a_gpu_and_one_gpu_for_every_rank(monkeypatch):
    from datacull import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match="local rank 1 has no GPU: 1 visible"):
        distributed.setup("ddp", "cuda")
    with pytest.raises(InputError, match="would put every rank on one GPU"):
        distributed.setup("ddp", "cuda:0")
    assert COLLECTIVE_TIMEOUT.total_seconds() >= 3600


def _log_with_an_empty_shard(rank: int, store: str, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    logger = DCLogger(folder, num_samples=6, distributed=True)
    if rank == 1:  # rank 0's shard is empty this epoch; it must still take part in the gather
        logger.log_metric(0, torch.tensor([1, 4]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    logger.flush()
    dist.destroy_process_group()


def test_a_rank_with_nothing_logged_still_gathers_and_rank_0_writes_the_others_rows(tmp_path):
    mp.spawn(
        _log_with_an_empty_shard, args=(str(tmp_path / "store"), str(tmp_path / "t")), nprocs=2, join=True
    )
    values, seen = np.load(tmp_path / "t" / "epoch0.npy"), np.load(tmp_path / "t" / "epoch0.seen.npy")
    assert seen.tolist() == [False, True, False, False, True, False]
    assert values[4].tolist() == [3.0, 4.0]


def test_amp_uses_bf16_only_where_the_gpu_computes_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert amp_dtype(torch.device("cuda", 0)) == torch.float16  # a T4: fp16 with loss scaling
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert amp_dtype(torch.device("cuda", 0)) == torch.bfloat16


def test_the_fp32_head_recomputes_the_logits_from_the_embedding():
    engine = Engine(build_recipe(compose_config(["model.hidden=8"]), CPU), images(), epochs=1, seed=0)
    x = torch.randn(5, 3, 8, 8)
    engine.capture.wanted = True
    logits = engine.model(x)
    outputs = engine._fp32_outputs(engine.capture.features.half(), torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(outputs.logits, logits, rtol=1e-2, atol=1e-2)
    assert outputs.logits.dtype == torch.float32 and outputs.losses.shape == (5,)


def test_the_engine_is_freed_without_the_garbage_collector():
    engine = Engine(build_recipe(compose_config(["model.hidden=8"]), CPU), images(), epochs=1, seed=0)
    alive = weakref.ref(engine)
    gc.disable()
    try:
        del engine
        assert alive() is None  # no reference cycle through a bound-method hook
    finally:
        gc.enable()


def test_channels_last_only_for_convolutions():
    recipe = build_recipe(compose_config(["model.hidden=8"]), CPU)
    import dataclasses

    recipe = dataclasses.replace(recipe, channels_last=True)
    assert not Engine(recipe, images(), epochs=1, seed=0).channels_last  # an MLP's input is not copied
    conv = dataclasses.replace(
        build_recipe(compose_config(["model=cnn", "model.width=4"]), CPU), channels_last=True
    )
    assert Engine(conv, images(), epochs=1, seed=0).channels_last


def test_normalization_statistics_in_chunks_equal_torchs():
    x = images(50).train_x
    mean, std = channel_statistics(x, chunk=7)
    pixels = x.float().div(255.0)
    torch.testing.assert_close(mean, pixels.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(std, pixels.std(dim=(0, 2, 3)))


def test_bf16_scores_and_trajectories_reach_numpy(tmp_path):
    values = torch.tensor([0.5, 0.25, 1.0], dtype=torch.bfloat16)
    assert ImportanceScores(values, True).dtype == np.float64
    loader = DCDataLoader(tensor_dataset([0, 1, 0]), 0.0, static=True)
    loader.compute_subset = lambda scores: [0, 1, 2]
    assert loader.resample(values).tolist() == [0, 1, 2]
    logger = DCLogger(tmp_path, num_samples=3, dtype=torch.bfloat16)
    logger.log_metric(0, torch.arange(3), values)
    logger.flush()
    assert np.load(tmp_path / "epoch0.npy").dtype == np.float32


def test_a_loader_draws_its_seed_from_the_generator_it_is_given():
    first = DCDataLoader(tensor_dataset([0, 1] * 4), 0.5, generator=torch.Generator().manual_seed(5))
    again = DCDataLoader(tensor_dataset([0, 1] * 4), 0.5, generator=torch.Generator().manual_seed(5))
    assert first.seed == again.seed


def test_deterministic_kernels_switch(monkeypatch):
    fake_cuda = torch.device("cuda", 0)
    try:
        configure_kernels(fake_cuda, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        assert not torch.backends.cuda.matmul.allow_tf32
        configure_kernels(fake_cuda, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
        assert torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
    configure_kernels(CPU, deterministic=True)  # a no-op on the CPU
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_gpu_smoke_script_skips_cleanly_without_cuda():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_smoke.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run the smoke script itself")
    assert result.returncode == 0 and "SKIP: no CUDA device" in result.stdout


def test_the_gpu_smoke_runs_the_lightning_docs_example_itself_not_a_copy(monkeypatch):
    """scripts/gpu_smoke.py takes docs/lightning.md's example as printed and only moves its Trainer to the GPU: an
    edit of the docs reaches the GPU check, and a changed Trainer line stops it with a message."""
    import importlib
    import sys

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    smoke = importlib.import_module("gpu_smoke")
    code = smoke.lightning_example()
    compile(code, "lightning_example", "exec")
    assert smoke.GPU_TRAINER in code and smoke.CPU_TRAINER not in code
    page = (scripts.parent / "docs" / "lightning.md").read_text()
    assert code.replace(smoke.GPU_TRAINER, smoke.CPU_TRAINER).split("assert loader.num_resamples")[0] in page
    sys.modules.pop("gpu_smoke", None)
