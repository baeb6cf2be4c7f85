"""The Hydra entry: ``@hydra.main`` hands each job of a run or a sweep to :func:`run_job`."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from .errors import DatacullError, InputError, LostRankError
from .outputs import atomic_write_json
from .paths import config_dir
from .plugins import register_with_hydra
from .settings import TrainerSettings

log = logging.getLogger("datacull")
register_with_hydra()  # registered methods without a YAML file, also in a launcher's worker processes


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra's task function: one job of a run or a sweep. Returns the final test accuracy (for sweepers)."""
    return run_job(cfg)


def run_job(cfg: DictConfig) -> float | None:
    """Train one job in Hydra's run folder, under DDP when torchrun started it. An input error ends a single run
    with one line and status 2; in a sweep any error is recorded in the job's summary and the sweep goes on (the
    CLI names the failed jobs when it ends)."""
    from .distributed import broadcast_object, lost_a_peer, setup, teardown
    from .runner import train

    hydra_config = HydraConfig.get()
    multirun = hydra_config.mode == RunMode.MULTIRUN
    run_dir = hydra_config.runtime.output_dir
    absolutize_paths(cfg)
    context = None
    try:
        trainer = TrainerSettings.of(cfg.trainer)
        context = setup(trainer.strategy, trainer.device)
        if context.enabled and multirun:
            raise InputError("trainer.strategy=ddp runs one configuration per torchrun launch; drop -m")
        run_dir = broadcast_object(context, run_dir)
        try:
            return train(cfg, run_dir, context=context)["test_acc"]
        except Exception as error:
            if context.enabled and lost_a_peer(error):
                raise LostRankError(
                    f"rank {context.rank} lost another rank of the run ({str(error).splitlines()[0][:200]}); once "
                    f"every node is back, continue it with the same torchrun command and `-m datacull resume "
                    f"{run_dir}`"
                ) from error
            raise
    except Exception as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not (multirun or isinstance(error, DatacullError)):
            raise
        if multirun:
            details = "" if isinstance(error, DatacullError) else "\n" + traceback.format_exc()
            _log_to_files_only(f"error: {error}{details}")
            _record_failure(run_dir, error)
            return None
        if context is None or context.is_main or isinstance(error, LostRankError):  # each survivor says it
            print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if context is not None:
            teardown(context)
        _free_memory()


def absolutize_paths(cfg: DictConfig) -> None:
    """Pin relative paths to the launch directory, so a resumed run finds the same files from anywhere."""
    with open_dict(cfg):
        cfg.cache_dir = str(Path(cfg.cache_dir).expanduser().resolve())
        if cfg.dataset.get("root"):
            cfg.dataset.root = str(Path(cfg.dataset.root).expanduser().resolve())
        if cfg.dataset.get("path") and Path(cfg.dataset.path).expanduser().exists():  # a save_to_disk folder
            cfg.dataset.path = str(Path(cfg.dataset.path).expanduser().resolve())


def _log_to_files_only(message: str) -> None:
    """Record ``message`` in the run's log file without repeating it on the console (stderr gets it once)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _record_failure(run_dir: str, error: BaseException) -> None:
    """Leave a failed ``summary.json`` for the sweep's end where the job failed before the runner wrote one."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        atomic_write_json(
            path, {"status": "failed", "error": f"{type(error).__name__}: {error}", "run_dir": run_dir}
        )


def _free_memory() -> None:
    """Hydra's basic launcher runs a sweep's jobs one after another in this process: release what a job held."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
