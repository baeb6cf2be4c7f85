"""The training loop: batches are index tensors into the data, whatever feeds them.

One code path for CPU and CUDA, and for two ways of feeding batches. Images as uint8 tensors live on the device
when they fit (a quarter of its free memory), else in pinned host memory, copied one batch at a time (the log says
which); their augmentation (random crop with zero padding, horizontal flip) runs on whole batches on the device.
Data that stream (image files, a ``Dataset`` of your own) are read by DataLoader workers ahead of each batch, a
transform of yours applied per sample there. Per-sample losses (``reduction="none"``) feed optional per-sample
weights and the :class:`~datacull.DCLogger` buffers; running totals stay on the device, so the only host syncs of
an epoch happen after its last step.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import ImageData
from .datasets.custom import build_transform
from .datasets.stream import StreamedSamples, epoch_seed, stream_batches
from .distributed import SINGLE, DistContext, all_reduce_sum, rank_slice
from .errors import DivergenceError
from .logger import DCLogger
from .models.common import call_model
from .models.external import final_linear

log = logging.getLogger("datacull")
#: Data stay on the GPU when they take at most this share of its free memory.
DEVICE_DATA_SHARE = 0.25

if TYPE_CHECKING:
    from .recipe import Recipe


@dataclass
class StepOutputs:
    """What a training step computed for its batch: per-sample losses, logits, and the embedding entering the
    final linear layer (only when a logger asks for it)."""

    losses: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor | None


#: The per-sample metrics a training step can log, by name (what ``DCImportance.requires`` names).
PER_SAMPLE_METRICS: dict[str, Callable[[StepOutputs], torch.Tensor]] = {
    "loss": lambda out: out.losses,
    "logits": lambda out: out.logits.float(),
    "feature_norm": lambda out: out.features.float().norm(dim=1),
}


class DeviceData:
    """Inputs and labels for the engine: resident on ``device``, pinned on the host and copied per batch, or
    :class:`~datacull.datasets.stream.StreamedSamples` read by DataLoader workers ahead of each batch (``transform``
    applied to each input there)."""

    def __init__(
        self,
        inputs: torch.Tensor | StreamedSamples,
        labels: torch.Tensor,
        device: torch.device,
        resident: bool,
        transform: Callable | None = None,
    ):
        self.device = device
        self.streaming = isinstance(inputs, StreamedSamples)
        self.resident = not self.streaming and (resident or device.type != "cuda")
        self.transform = transform
        if self.streaming:
            self.inputs, self.labels = inputs, labels.to(device)
        elif self.resident:
            self.inputs, self.labels = inputs.to(device), labels.to(device)
        else:
            self.inputs, self.labels = inputs.pin_memory(), labels.pin_memory()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch ``index`` (on the engine's device when resident, else on the host) as device tensors."""
        if self.resident:
            return self.inputs[index], self.labels[index]
        index = index.cpu()
        return (
            self.inputs[index].pin_memory().to(self.device, non_blocking=True),
            self.labels[index].pin_memory().to(self.device, non_blocking=True),
        )

    def batches(self, batches: list[torch.Tensor], seed: int | None = None):
        """The inputs and labels of each batch of indices, in order, on the device; ``seed`` seeds a streamed
        transform (:func:`~datacull.datasets.stream.epoch_seed`)."""
        if self.streaming:
            streamed = stream_batches(self.inputs, batches, self.device, self.transform, seed)
            for index, inputs in zip(batches, streamed, strict=True):
                yield inputs, self.labels[index.to(self.device, non_blocking=True)]
            return
        for index in batches:
            yield self.take(index)

    def chunks(self, size: int):
        """The data in order, ``size`` samples at a time, on the device (for evaluation)."""
        starts = range(0, len(self), size)
        yield from self.batches(
            [torch.arange(start, min(start + size, len(self)), device=self.index_device) for start in starts]
        )

    @property
    def index_device(self) -> torch.device:
        return self.device if self.resident else torch.device("cpu")


def fits_on_device(data: ImageData, device: torch.device) -> bool:
    """Whether the uint8 images of every split fit in :data:`DEVICE_DATA_SHARE` of ``device``'s free memory."""
    if device.type != "cuda" or isinstance(data.train_x, StreamedSamples):
        return True
    splits = [data.train_x, data.test_x, data.val_x]
    needed = sum(tensor.numel() * tensor.element_size() for tensor in splits if tensor is not None)
    free, _ = torch.cuda.mem_get_info(device)
    return needed <= DEVICE_DATA_SHARE * free


#: Normalization statistics of streamed images come from a seeded sample of this many.
STATISTICS_SAMPLE = 5000


def channel_statistics(
    images: torch.Tensor | StreamedSamples, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) standard deviation of uint8 images in [0, 1], in chunks: no float copy of
    the whole set. Of streamed files, a seeded sample of :data:`STATISTICS_SAMPLE`."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    if isinstance(images, StreamedSamples):
        sample = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:STATISTICS_SAMPLE]
        parts = stream_batches(images, list(torch.sort(sample).values.split(256)), torch.device("cpu"))
        count = len(sample) * images.shape[2] * images.shape[3]
    else:
        parts = (images[start : start + chunk] for start in range(0, images.shape[0], chunk))
        count = images.shape[0] * images.shape[2] * images.shape[3]
    for part in parts:
        part = part.double().div_(255.0)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    mean = total / count
    variance = (squares - count * mean.square()) / max(count - 1, 1)
    return mean.float(), variance.clamp_min(0).sqrt().clamp_min(1e-3).float()


def amp_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU computes it natively (compute capability 8.0, Ampere, and newer); fp16 with loss scaling
    before that (``torch.cuda.is_bf16_supported`` also counts emulation, and asks about the current device)."""
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


class FeatureCapture:
    """A forward hook on the final linear layer that keeps its input (the embedding) when asked. An object of its
    own, not a bound method of the engine, so the model holds no reference back to the engine."""

    def __init__(self):
        self.wanted = False
        self.features: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.features = inputs[0] if self.wanted else None


class BatchAugment:
    """Random crop (zero padding) and horizontal flip of a uint8 batch, then normalization, on its device.

    The random draws are separate from their use (``draw`` then ``__call__``), so that distributed ranks can
    draw for the whole global batch and each apply its own slice: the same augmentation as one process.
    """

    def __init__(
        self, padding: int, flip: bool, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator
    ):
        self.padding = int(padding)
        self.flip = bool(flip)
        self.mean = mean.view(1, -1, 1, 1)
        self.std = std.view(1, -1, 1, 1)
        self.generator = generator

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float().div_(255.0) - self.mean) / self.std

    def draw(self, batch: int) -> dict[str, torch.Tensor]:
        """The random numbers for ``batch`` samples: crop offsets (2, B) and flip decisions (B,)."""
        device = self.mean.device
        draws = {}
        if self.padding:
            draws["offsets"] = torch.randint(
                0, 2 * self.padding + 1, (2, batch), device=device, generator=self.generator
            )
        if self.flip:
            draws["flips"] = torch.rand(batch, device=device, generator=self.generator) < 0.5
        return draws

    def __call__(self, images: torch.Tensor, draws: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        batch, channels, height, width = images.shape
        device = images.device
        draws = self.draw(batch) if draws is None else draws
        if self.padding:
            pad, offsets = self.padding, draws["offsets"]
            padded = F.pad(images, (pad, pad, pad, pad))
            rows = (offsets[0, :, None] + torch.arange(height, device=device))[:, None, :, None]
            cols = (offsets[1, :, None] + torch.arange(width, device=device))[:, None, None, :]
            batch_index = torch.arange(batch, device=device)[:, None, None, None]
            channel_index = torch.arange(channels, device=device)[None, :, None, None]
            images = padded[batch_index, channel_index, rows, cols]
        if self.flip:
            images = torch.where(draws["flips"][:, None, None, None], images.flip(3), images)
        return self.normalize(images)


class PassThrough:
    """The device-side augmentation of inputs other than images: none (a transform of yours runs per sample in
    the DataLoader workers), and no normalization."""

    def draw(self, batch: int) -> dict[str, torch.Tensor]:
        return {}

    def __call__(self, inputs: Any, draws: dict[str, torch.Tensor] | None = None) -> Any:
        return inputs

    def normalize(self, inputs: Any) -> Any:
        return inputs


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    samples: int
    steps: int
    lr: float
    trained: torch.Tensor  # how often each dataset sample was trained this epoch (over all ranks)


@dataclass
class Evaluation:
    accuracy: float
    per_class: list[float]

    @property
    def worst_class(self) -> float:
        present = [value for value in self.per_class if not math.isnan(value)]
        return min(present) if present else float("nan")


class Engine:
    """Model, optimizer, schedule and data of one training run, with ``train_epoch`` and ``evaluate``."""

    def __init__(
        self,
        recipe: Recipe,
        data: ImageData,
        epochs: int,
        seed: int,
        context: DistContext = SINGLE,
        steps: int | None = None,
    ):
        device = recipe.device
        self.device = device
        self.context = context
        self.epochs = int(epochs)
        # a budget in optimizer steps (the CCS protocol) instead of epochs: the schedule follows steps done
        self.total_steps = None if steps is None else int(steps)
        self.global_step = 0
        self.batch_size = recipe.batch_size
        self.eval_batch_size = recipe.eval_batch_size
        self.seed = int(seed)
        torch.manual_seed(seed)
        self.model = recipe.build_model(data).to(device)
        # channels-last helps convolutions only; an MLP's input would be copied for nothing
        self.channels_last = recipe.channels_last and any(
            isinstance(m, nn.Conv2d) for m in self.model.modules()
        )
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = recipe.build_optimizer(self.model)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.schedule = recipe.build_schedule(self.epochs)
        self.amp = recipe.amp
        self.amp_dtype = amp_dtype(device) if self.amp else torch.float32
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.num_classes = data.num_classes
        resident = fits_on_device(data, device)
        if isinstance(data.train_x, StreamedSamples):
            log.info("data streamed: %d DataLoader workers read each batch", data.train_x.workers)
        elif device.type == "cuda":
            log.info(
                "data %s", "resident on the GPU" if resident else "in pinned host memory, copied per batch"
            )
        augment = recipe.augment
        transform = None if data.images else build_transform(augment)
        self.train_data = DeviceData(data.train_x, data.train_y, device, resident, transform)
        self.eval_sets = {"test": DeviceData(data.test_x, data.test_y, device, resident)}
        if data.val_x is not None and data.val_x.shape[0]:
            self.eval_sets["val"] = DeviceData(data.val_x, data.val_y, device, resident)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.augment: BatchAugment | PassThrough = PassThrough()
        if data.images:
            mean, std = channel_statistics(data.train_x)
            self.augment = BatchAugment(
                augment.get("crop_padding", 0),
                augment.get("flip", False),
                mean.to(device),
                std.to(device),
                self.generator,
            )
        # what forward passes call: the model, maybe compiled; training wraps it for gradient averaging under DDP
        self.inference_model: nn.Module = self.model
        self.compiled = recipe.compile
        if self.compiled:
            self.inference_model = torch.compile(self.model)
        self.forward_model = self.inference_model
        if context.enabled:
            device_ids = [device.index] if device.type == "cuda" else None
            self.forward_model = nn.parallel.DistributedDataParallel(
                self.forward_model, device_ids=device_ids
            )
        # the embedding entering the final linear layer: for gradient-norm scores, and for fp32 logits under AMP
        self.capture = FeatureCapture()
        self.head = final_linear(self.model, recipe.model.params.get("feature_layer"), data.num_classes)
        self.head.register_forward_hook(self.capture)

    # ---------------------------------------------------------------------------------------------- train
    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _forward(self, model: nn.Module, inputs: Any) -> torch.Tensor:
        """The logits of a batch of inputs (a tensor, or a dict of tensors passed as keyword arguments)."""
        if self.channels_last and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.compiled:  # one graph for every batch size (the last batch of an epoch is smaller)
            for tensor in inputs.values() if isinstance(inputs, Mapping) else [inputs]:
                torch._dynamo.mark_dynamic(tensor, 0)
        with self._autocast():
            return call_model(model, inputs)

    def progress(self, epoch: int, step: int, steps_this_epoch: int) -> float:
        """The fraction of training done before this step: by steps under a step budget, else by epochs (so
        a schedule stays right when the number of steps per epoch changes with the subset)."""
        if self.total_steps is not None:
            return self.global_step / max(self.total_steps, 1)
        return (epoch + step / steps_this_epoch) / self.epochs

    def _set_lr(self, progress: float) -> float:
        factor = self.schedule(min(progress, 1.0))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        return self.base_lrs[0] * factor

    def train_epoch(
        self,
        epoch: int,
        order: torch.Tensor,
        weights: torch.Tensor | None = None,
        loggers: dict[str, DCLogger] | None = None,
        progress: Any = None,
    ) -> EpochStats:
        """One pass over ``order`` (dataset indices, in the order to train them).

        ``weights`` (one per dataset sample) scale each sample's loss; ``loggers`` maps a metric name (a key of
        :data:`PER_SAMPLE_METRICS`) to the logger that records it for every trained sample.
        Under DDP every rank gets the same ``order``; each global batch is split across ranks, so the shards are
        disjoint, cover ``order`` exactly once, and every rank takes the same number of steps.
        """
        loggers = loggers or {}
        world = self.context.world_size
        self.model.train()
        num_steps = max(1, math.ceil(order.numel() / self.batch_size))
        order = order.to(self.train_data.index_device, non_blocking=True)
        weights = None if weights is None else weights.to(self.device, non_blocking=True)
        totals = torch.zeros(3, device=self.device, dtype=torch.float64)  # loss sum, correct, samples
        trained = torch.zeros(len(self.train_data), device=self.device, dtype=torch.long)
        # under AMP the logged logits come from an fp32 head: bf16 logits would merge near-ties in the scores
        fp32_head = self.amp and bool({"loss", "logits"} & loggers.keys())
        self.capture.wanted = "feature_norm" in loggers or fp32_head
        lr = self.base_lrs[0]
        batches = torch.tensor_split(order, num_steps)
        if self.total_steps is not None:  # a step budget ends inside an epoch
            batches = batches[: max(0, self.total_steps - self.global_step)]
        parts = [rank_slice(global_batch.numel(), self.context) for global_batch in batches]
        shards = [global_batch[part] for global_batch, part in zip(batches, parts, strict=True)]
        batch_data = self.train_data.batches(shards, epoch_seed(self.seed, epoch))
        for step, (global_batch, part, batch) in enumerate(zip(batches, parts, shards, strict=True)):
            lr = self._set_lr(self.progress(epoch, step, num_steps))
            draws = self.augment.draw(global_batch.numel())
            local_draws = {name: value[..., part] for name, value in draws.items()}
            inputs, labels = next(batch_data)
            logits = self._forward(self.forward_model, self.augment(inputs, local_draws))
            losses = F.cross_entropy(logits.float(), labels, reduction="none")
            weighted = losses * weights[batch.to(self.device)] if weights is not None else losses
            # the mean over the global batch: each rank's sum over its shard, DDP averaging over ranks, so shards
            # of unequal size weigh every sample alike and an empty one adds nothing
            loss = weighted.sum() / max(global_batch.numel(), 1) * world
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            detached = losses.detach()
            totals[0] += detached.sum()
            totals[1] += (logits.detach().argmax(1) == labels).sum()
            totals[2] += batch.numel()
            trained[batch.to(self.device)] += 1
            if loggers:
                features = None if self.capture.features is None else self.capture.features.detach()
                outputs = StepOutputs(detached, logits.detach(), features)
                if fp32_head:
                    outputs = self._fp32_outputs(features, labels)
                for name, logger in loggers.items():
                    logger.log_metric(epoch, batch, PER_SAMPLE_METRICS[name](outputs))
            self.global_step += 1
            if progress is not None:
                progress.update(1)
        self.capture.wanted, self.capture.features = False, None
        all_reduce_sum(self.context, totals)
        all_reduce_sum(self.context, trained)
        loss_sum, correct, samples = totals.tolist()  # the epoch's one host sync
        mean_loss = loss_sum / max(samples, 1)
        if not math.isfinite(mean_loss):
            raise DivergenceError(
                f"training loss became {mean_loss} in epoch {epoch}; lower optimizer.lr or check the data "
                "(the last good checkpoint is kept)"
            )
        return EpochStats(mean_loss, correct / max(samples, 1), int(samples), len(batches), lr, trained.cpu())

    @torch.no_grad()
    def _fp32_outputs(self, features: torch.Tensor, labels: torch.Tensor) -> StepOutputs:
        """Logits and losses of the step recomputed by the final layer in fp32, from the embedding it received."""
        head = self.head
        logits = F.linear(
            features.float(), head.weight.float(), None if head.bias is None else head.bias.float()
        )
        return StepOutputs(F.cross_entropy(logits, labels, reduction="none"), logits, features)

    # ----------------------------------------------------------------------------------------- evaluate
    @torch.no_grad()
    def evaluate(self, split: str = "test") -> Evaluation:
        """Top-1 and per-class accuracy on ``split`` (``test`` or ``val``); NaN for classes absent there. Under DDP
        every rank first takes rank 0's BatchNorm statistics (each rank's own drifted with its last shard), then
        evaluates its share."""
        if self.context.enabled:
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        data = self.eval_sets[split]
        rank, world = self.context.rank, self.context.world_size
        self.model.eval()
        counts = torch.zeros(self.num_classes, device=self.device)
        hits = torch.zeros(self.num_classes, device=self.device)
        for number, (inputs, labels) in enumerate(data.chunks(self.eval_batch_size)):
            if number % world != rank:  # each rank evaluates its share of the batches
                continue
            predicted = self._forward(self.inference_model, self.augment.normalize(inputs)).argmax(1)
            counts += torch.bincount(labels, minlength=self.num_classes)
            hits += torch.bincount(labels[predicted == labels], minlength=self.num_classes)
        all_reduce_sum(self.context, counts)
        all_reduce_sum(self.context, hits)
        hits, counts = hits.double(), counts.double()  # exact fractions, not float32 noise
        per_class = (
            (hits / counts.clamp_min(1)).where(counts > 0, torch.full_like(hits, float("nan"))).tolist()
        )
        return Evaluation(float(hits.sum() / max(float(counts.sum()), 1.0)), per_class)

    # ------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "global_step": self.global_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # a run saved without loss scaling has an empty scaler state
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.global_step = int(state.get("global_step", 0))
