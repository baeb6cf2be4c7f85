"""The thin Hydra entry around :func:`datacull.runner.train`, and ``resume`` (which needs no Hydra)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import DatacullError, InputError
from .paths import config_dir

log = logging.getLogger("datacull")

#: Set by the CLI: re-raise input errors with their traceback instead of printing one line.
SHOW_TRACEBACK = False
#: Run folders of sweep jobs that failed in this process (a sweep goes on after a failed job).
FAILED_JOBS: list[str] = []


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
    except DatacullError as error:
        if SHOW_TRACEBACK:
            raise
        _log_to_files_only(f"error: {error}")
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            FAILED_JOBS.append(HydraConfig.get().runtime.output_dir)
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
