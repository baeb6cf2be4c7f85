"""Programs the DDP tests launch, one process per rank (under torchrun, or Lightning's own launcher).

``python -m tests.ddp_runs script FILE OUT`` runs FILE (a docs code block, unchanged) as ``__main__``;
``python -m tests.ddp_runs lightning_resume OUT`` fits the same Lightning run straight and resumed from a checkpoint.
Either writes OUT/rank<r>.json: per epoch, the subset this rank chose, the batches of sample indices it logged (what
it trained, step by step) and the samples each merged epoch file marks as seen when this rank could read it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from datacull import DCLogger
from datacull.data import DCDataLoader
from datacull.logger import epoch_paths

REPO = Path(__file__).resolve().parents[1]


def docs_block(containing: str) -> str:
    """The code block of docs/scaling.md that contains ``containing``."""
    text = (REPO / "docs" / "scaling.md").read_text()
    return next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if containing in block)


def launch(folder: Path, *command: str) -> Path:
    """Run ``command`` (a launch of this module) in ``folder``, with this checkout importable; its records' folder."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder / "out"


def torchrun(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *arguments]


class Recorder:
    """Wraps the library's three points of contact with a run: resample, log_metric and flush."""

    def __init__(self):
        self.runs: dict[str, dict] = {}
        self.run = "run"
        self.rank = 0

    def current(self) -> dict:
        return self.runs.setdefault(self.run, {"subsets": {}, "batches": {}, "merged": {}})

    def install(self) -> None:
        recorder = self
        resample, log_metric, flush = DCDataLoader.resample, DCLogger.log_metric, DCLogger.flush

        def recording_resample(loader, sample_importance=None):
            epoch = loader.current_epoch
            indices = resample(loader, sample_importance)
            recorder.current()["subsets"][epoch] = sorted(indices.tolist())
            return indices

        def recording_log_metric(logger, epoch, sample_idx, metric):
            if dist.is_initialized():
                recorder.rank = dist.get_rank()
            recorder.current()["batches"].setdefault(int(epoch), []).append(sample_idx.tolist())
            log_metric(logger, epoch, sample_idx, metric)

        def recording_flush(logger):
            epoch = logger._epoch if logger._values else None
            flush(logger)
            if epoch is not None:  # every rank reads the merged epoch rank 0 wrote
                seen = np.load(epoch_paths(logger.trajectory_dir, epoch)[1])
                recorder.current()["merged"][epoch] = np.flatnonzero(seen).tolist()

        DCDataLoader.resample = recording_resample
        DCLogger.log_metric = recording_log_metric
        DCLogger.flush = recording_flush

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rank{self.rank}.json").write_text(json.dumps(self.runs))


def run_script(path: Path, recorder: Recorder) -> None:
    code = compile(path.read_text(), str(path), "exec")
    exec(code, {"__name__": "__main__"})


def lightning_resume(out: Path, recorder: Recorder) -> None:
    """The resumption test of tests/test_lightning.py on every rank: straight, then 2 epochs + a checkpoint +
    a fresh fit resumed from it."""
    from datacull.lightning import DataCullCallback

    from .lightning_parts import Recorder as Module
    from .lightning_parts import rcap_setup, trainer

    options = {"devices": 2, "strategy": "ddp"}
    recorder.run = "straight"
    torch.manual_seed(0)
    loader, importance, _ = rcap_setup(out / "straight")
    trainer(DataCullCallback(loader, importance), **options).fit(Module(loader))

    recorder.run = "first"
    torch.manual_seed(0)
    loader, importance, _ = rcap_setup(out / "interrupted")
    first = trainer(DataCullCallback(loader, importance), epochs=2, **options)
    first.fit(Module(loader))
    first.save_checkpoint(out / "last.ckpt")  # a collective; rank 0 writes

    recorder.run = "resumed"
    loader, importance, _ = rcap_setup(out / "interrupted")  # fresh objects, as in a new process
    trainer(DataCullCallback(loader, importance), **options).fit(Module(loader), ckpt_path=out / "last.ckpt")


if __name__ == "__main__":
    recorder = Recorder()
    recorder.install()
    if sys.argv[1] == "script":
        run_script(Path(sys.argv[2]), recorder)
    else:
        lightning_resume(Path(sys.argv[2]), recorder)
    recorder.save(Path(sys.argv[-1]))


def check_ranks(out: Path, run: str = "run", world: int = 2) -> list[dict]:
    """Assert what every DDP test promises, epoch by epoch: one subset on all ranks, shares that are disjoint and
    cover it, the same number of steps on every rank, and a merged epoch file that saw the whole subset, read back
    on every rank. Returns the ranks' records."""
    ranks = [json.loads((out / f"rank{rank}.json").read_text())[run] for rank in range(world)]
    epochs = sorted(ranks[0]["subsets"], key=int)
    assert epochs and all(sorted(record["subsets"], key=int) == epochs for record in ranks)
    for epoch in epochs:
        subset = ranks[0]["subsets"][epoch]
        assert all(record["subsets"][epoch] == subset for record in ranks), f"epoch {epoch}: subsets differ"
        shares = [[index for batch in record["batches"][epoch] for index in batch] for record in ranks]
        assert sorted(index for share in shares for index in share) == subset, (
            f"epoch {epoch}: shares overlap"
        )
        assert len({len(record["batches"][epoch]) for record in ranks}) == 1, f"epoch {epoch}: unequal steps"
        assert all(record["merged"][epoch] == subset for record in ranks), (
            f"epoch {epoch}: merged log incomplete"
        )
    return ranks
