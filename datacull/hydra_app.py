"""The thin Hydra entry around :func:`datacull.runner.train`, and ``resume`` (which needs no Hydra)."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import DatacullError, InputError
from .outputs import atomic_write_json
from .paths import config_dir

log = logging.getLogger("datacull")

#: ``(job folder, error)`` of each failed job of the last sweep, set by :class:`SweepReport` in the
#: launching process (a sweep goes on after a failed job; the CLI reports them at the end).
FAILED_JOBS: list[tuple[str, str]] = []


def absolutize_paths(cfg: DictConfig) -> None:
    """Pin relative paths to the launch directory, so a resumed run finds the same files from anywhere."""
    with open_dict(cfg):
        cfg.cache_dir = str(Path(cfg.cache_dir).expanduser().resolve())
        if cfg.dataset.get("root"):
            cfg.dataset.root = str(Path(cfg.dataset.root).expanduser().resolve())


def _log_to_files_only(message: str) -> None:
    """Record ``message`` in the run's log file without repeating it on the console (stderr gets it once)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _show_traceback() -> bool:
    """``datacull train --debug`` sets HYDRA_FULL_ERROR, which launchers pass on to their worker processes."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _record_failure(run_dir: str, error: BaseException) -> None:
    """Leave a failed ``summary.json`` for the sweep report where the job failed before the runner wrote one."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        atomic_write_json(
            path, {"status": "failed", "error": f"{type(error).__name__}: {error}", "run_dir": run_dir}
        )


def _summary_versions(sweep_dir: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in sweep_dir.rglob("summary.json")}


class SweepReport(Callback):
    """Collects the sweep's failed jobs into :data:`FAILED_JOBS` when it ends, from the jobs' ``summary.json``:
    launchers run jobs in other processes (joblib) or on other machines (SLURM), so files are what they share.
    Summaries that were already there when the sweep started (a reused sweep folder) are left out."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        FAILED_JOBS.clear()
        self._before = _summary_versions(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        before = getattr(self, "_before", {})
        for path, version in sorted(_summary_versions(Path(config.hydra.sweep.dir)).items()):
            if before.get(path) == version:
                continue
            try:
                summary = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                summary = {"status": "failed", "error": f"summary.json cannot be read ({error})"}
            if summary.get("status") != "completed":
                reason = summary.get("error") or f"status {summary.get('status')!r} (the job did not finish)"
                FAILED_JOBS.append((str(path.parent), reason))


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra's task function: one job of a run or a sweep. Returns the final test accuracy (for sweepers)."""
    from .distributed import broadcast_object, setup, teardown
    from .runner import train

    absolutize_paths(cfg)
    context = None
    try:
        context = setup(str(cfg.trainer.get("strategy", "single")), str(cfg.trainer.device))
        if context.enabled and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise InputError("trainer.strategy=ddp runs one configuration per torchrun launch; drop -m")
        run_dir = broadcast_object(context, HydraConfig.get().runtime.output_dir)  # rank 0's folder for all
        summary = train(cfg, run_dir, context=context)
    except Exception as error:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        if _show_traceback() or not (multirun or isinstance(error, DatacullError)):
            raise
        if multirun:  # the other jobs go on; SweepReport names this one when the sweep ends
            details = "" if isinstance(error, DatacullError) else "\n" + traceback.format_exc()
            _log_to_files_only(f"error: {error}{details}")
            _record_failure(HydraConfig.get().runtime.output_dir, error)
            return None
        if context is None or context.is_main:
            print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if context is not None:
            teardown(context)
        _free_memory()
    return summary["test_acc"]


def resume_run(run_dir: Path) -> dict:
    """Continue ``run_dir`` from its checkpoint with the configuration saved in it."""
    from .outputs import RunFolder
    from .runner import train

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "checkpoint.pt").is_file():
        raise InputError(
            f"{run_dir} is not a resumable datacull run folder (it needs config.yaml and checkpoint.pt)"
        )
    folder = RunFolder(run_dir)
    if folder.summary_path.exists() and folder.read_summary().get("status") == "completed":
        raise InputError(f"{run_dir} has already completed; start a new run instead of resuming it")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    logging.getLogger().addHandler(handler)
    try:
        return train(cfg, run_dir, resume=True)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
