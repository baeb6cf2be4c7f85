"""How a model is trained, whatever the samples: the model, optimizer, schedule, augmentation and precision of a
run, resolved from its config. Engines are built from a :class:`Recipe`; a scoring cache key covers its fingerprint.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from .catalog import get_model, get_optimizer, get_scheduler
from .datasets import ImageData
from .datasets.stream import StreamedSamples
from .errors import InputError
from .models.common import call_model
from .settings import TrainerSettings


@dataclass(frozen=True)
class Component:
    """A registered implementation chosen in a config group (``model=cnn``) with its parameters."""

    name: str
    params: dict[str, Any]

    @classmethod
    def from_config(cls, section: DictConfig) -> Component:
        values = OmegaConf.to_container(section, resolve=True)
        return cls(str(values.pop("name")), values)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


@dataclass(frozen=True)
class Recipe:
    """How a model is trained, whatever the samples: what an Engine is built from and a scoring cache key covers."""

    model: Component
    optimizer: Component
    scheduler: Component
    augment: dict[str, Any]
    batch_size: int
    eval_batch_size: int
    device: torch.device
    amp: bool
    channels_last: bool
    compile: bool

    def build_model(self, data: ImageData) -> nn.Module:
        """The registered model, built with the data set's classes and image shape; a model whose builder names
        ``input_shape`` (``model=custom``) also takes that, and with it inputs other than images."""
        builder = get_model(self.model.name)
        shapes = {"in_channels": data.in_channels, "image_size": data.image_size}
        if "input_shape" in inspect.signature(builder).parameters:
            shapes["input_shape"] = data.input_shape
        elif data.image_size is None:
            raise InputError(
                f"model={self.model.name} takes images (C, H, W); the data set's inputs are "
                f"{describe_inputs(data)}: bring a model for them as model=custom model._target_=<your nn.Module>"
            )
        return builder(num_classes=data.num_classes, **shapes, **self.model.params)

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return get_optimizer(self.optimizer.name)(model, **self.optimizer.params)

    def build_schedule(self, epochs: int):
        return get_scheduler(self.scheduler.name)(epochs, **self.scheduler.params)

    def flops_per_sample(self, data: ImageData) -> float:
        """Forward and backward FLOPs of one training sample (torch's FLOP counter on a batch of two)."""
        from torch.utils.flop_counter import FlopCounterMode

        model = self.build_model(data)
        count = min(2, len(data.train_y))
        if isinstance(data.train_x, StreamedSamples):
            inputs = data.train_x.fetch(range(count))
            inputs = inputs.float() if data.images else inputs
        else:
            inputs = torch.zeros(count, *data.input_shape)
        counter = FlopCounterMode(display=False)
        with counter:
            call_model(model, inputs).sum().backward()
        return counter.get_total_flops() / count

    def fingerprint(self) -> dict[str, Any]:
        """Everything of the recipe that changes a trajectory (for the scoring cache key)."""
        return {
            "model": self.model.describe(),
            "optimizer": self.optimizer.describe(),
            "scheduler": self.scheduler.describe(),
            "dataset_augment": self.augment,
            "batch_size": self.batch_size,
            "amp": self.amp,
            "device": self.device.type,
        }


def build_recipe(cfg: DictConfig, device: torch.device) -> Recipe:
    trainer = TrainerSettings.of(cfg.trainer)
    augment = cfg.dataset.get("augment")  # absent from a dataset section without one (a plugin's)
    batch_size = int(trainer.batch_size)
    if batch_size < 1:
        raise InputError(f"trainer.batch_size must be >= 1; got {batch_size}")
    return Recipe(
        model=Component.from_config(cfg.model),
        optimizer=Component.from_config(cfg.optimizer),
        scheduler=Component.from_config(cfg.scheduler),
        augment=OmegaConf.to_container(augment, resolve=True) if augment else {},
        batch_size=batch_size,
        eval_batch_size=trainer.eval_batch_size,
        device=device,
        amp=trainer.amp and device.type == "cuda",
        channels_last=device.type == "cuda" and trainer.channels_last,
        compile=trainer.compile,
    )


def describe_inputs(data: ImageData) -> str:
    """What one input of the data set is, in words (for errors)."""
    if data.input_shape is None:
        return "dicts of tensors"
    return f"of shape {tuple(data.input_shape)}"
