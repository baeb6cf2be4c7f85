"""``cfg.trainer``, typed: one home for the trainer's settings, whose defaults are those of
``conf/trainer/default.yaml`` (read from it, never repeated in code). A config composed without some key (a test's,
a script's) gets the file's value for it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

from omegaconf import OmegaConf

from .paths import config_dir


@functools.cache
def _defaults() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(config_dir() / "trainer" / "default.yaml"), resolve=True)


@dataclass(frozen=True)
class TrainerSettings:
    epochs: int
    budget: str
    compute: float | None
    steps: int | None
    batch_size: int
    eval_batch_size: int
    device: str
    amp: bool
    channels_last: bool
    compile: bool
    deterministic: bool
    eval_every: int
    num_threads: int | None
    progress: str
    tensorboard: bool
    store: str
    store_limit_gb: float
    strategy: str

    @classmethod
    def of(cls, trainer: Any) -> TrainerSettings:
        """From a config's ``trainer`` section (a DictConfig or a dict; ``TrainerSettings`` passes through)."""
        if isinstance(trainer, cls):
            return trainer
        given = (
            OmegaConf.to_container(trainer, resolve=True) if OmegaConf.is_config(trainer) else dict(trainer)
        )
        values = {**_defaults(), **given}
        return cls(**{column.name: values[column.name] for column in fields(cls)})
