"""DataLoader path: ``datacull train`` on a Dataset of your own against a plain PyTorch loop over the same DataLoader,
and against datacull's resident image path, on a CIFAR-10 subset.

The data: ``--per-class`` training images of each CIFAR-10 class from ``../shared/data/cifar10``, decoded once
(cached). The Dataset is what a user brings: ``CifarTensors`` gives ``(normalized float (3, 32, 32) image, label)``
items, each normalized when read. Every arm trains the registered ``cnn`` (SGD, constant learning rate, no
augmentation, batch ``--batch``) on it:

- plain: a hand-written loop over ``DataLoader(CifarTensors, batch_sampler=a new permutation each epoch in batches
  of at most --batch, split evenly as the runner splits them, num_workers=--workers, prefetch_factor=4,
  pin_memory on CUDA)``: forward, cross-entropy, backward, step;
- ``Engine.train_epoch`` on the same data as ``dataset=custom`` gives it (the DataLoader path), its epochs alternating
  with the plain loop's on the same batch orders from the same initial weights: the path's own cost, and both end
  with the same weights (the script checks it);
- ``datacull train``, DataLoader path: the real runner (``dataset=custom
  dataset._target_=bench_dataloader_path.CifarTensors dataset.workers=--workers``): sampler, per-sample losses,
  metrics and a checkpoint after every epoch, each epoch the interval between two consecutive epochs' ends (the
  first and the last, which evaluates, not timed);
- ``datacull train``, resident path: the same images as resident uint8 tensors (``dataset=imagefolder``),
  normalized on whole batches.

The first epoch of every arm is a warm-up; the arms are interleaved, ``--repeats`` times.

    python scripts/bench_dataloader_path.py                 # 200 images per class, batch 128, 2 workers, 3 repeats
    python scripts/bench_dataloader_path.py --quick         # 10 per class; asserts equal weights
"""

from __future__ import annotations

import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

sys.path.insert(0, str(benchlib.REPO))
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from datacull.datasets.stream import PREFETCH_BATCHES  # noqa: E402
from datacull.engine import Engine  # noqa: E402
from datacull.parts import load_dataset, resolve_device  # noqa: E402
from datacull.recipe import build_recipe  # noqa: E402

CIFAR10 = benchlib.SHARED_CIFAR10
GOAL = 1.05
FULL = {"per_class": 200, "epochs": 4, "width": 16}
QUICK = {"per_class": 10, "epochs": 3, "width": 4}


def image_folder(root: Path, per_class: int) -> dict:
    """The ``dataset=imagefolder`` section of the CIFAR-10 subset (decoded once into the cache, then read)."""
    return {
        "name": "imagefolder",
        "root": str(root),
        "subset_per_class": per_class,
        "test_subset_per_class": max(1, per_class // 5),
        "in_memory": True,
        "val_fraction": 0.0,
        "augment": {"crop_padding": 0, "flip": False},
    }


class CifarTensors(Dataset):
    """A user's Dataset: CIFAR-10 images as normalized float (3, 32, 32) tensors, normalized when read."""

    def __init__(self, train: bool, root: str, per_class: int, cache_dir: str):
        data = load_dataset(OmegaConf.create(image_folder(Path(root), per_class)), cache_dir)
        self.images, self.targets = (data.train_x, data.train_y) if train else (data.test_x, data.test_y)
        pixels = data.train_x.double().div(255.0)
        self.mean = pixels.mean(dim=(0, 2, 3)).float().view(-1, 1, 1)
        self.std = pixels.std(dim=(0, 2, 3)).float().view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return (self.images[index].float().div(255.0) - self.mean) / self.std, int(self.targets[index])


def config(path: str, args, sizes: dict, cache_dir: Path):
    """The runner's config of one arm: ``custom`` (the DataLoader path) or ``imagefolder`` (the resident path)."""
    from hydra import compose, initialize_config_dir

    from datacull.paths import config_dir

    epochs = sizes["epochs"]
    overrides = [
        "model=cnn",
        f"model.width={sizes['width']}",
        "importance=uniform",
        "sampler=random",
        "sampler.pruning_rate=0.0",
        "optimizer=sgd",
        "scheduler=constant",
        f"trainer.epochs={epochs}",
        f"trainer.batch_size={args.batch}",
        f"trainer.eval_every={epochs}",
        f"trainer.device={args.device}",
        "trainer.progress=log",
        f"cache_dir={cache_dir}",
        f"trainer.num_threads={args.threads or 'null'}",
    ]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    cfg.dataset = image_folder(args.root, sizes["per_class"])
    if path == "custom":
        cfg.dataset = {
            "name": "custom",
            "_target_": "bench_dataloader_path.CifarTensors",
            "root": str(args.root),
            "per_class": sizes["per_class"],
            "cache_dir": str(cache_dir),
            "workers": args.workers,
            "val_fraction": 0.0,
        }
    return cfg


def plain_batches(
    dataset: CifarTensors, order: torch.Tensor, batch_size: int, device: torch.device, workers: int
):
    """One epoch of a DataLoader over ``dataset`` in ``order``, split evenly into batches of at most
    ``batch_size`` (as the runner splits an epoch), on ``device``."""
    loader = DataLoader(
        dataset,
        batch_sampler=[
            batch.tolist() for batch in torch.tensor_split(order, math.ceil(len(order) / batch_size))
        ],
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=PREFETCH_BATCHES if workers else None,
    )
    for images, labels in loader:
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def paired_epochs(
    cfg, dataset: CifarTensors, device: torch.device, orders: list[torch.Tensor], workers: int
) -> tuple[list[float], list[float], float]:
    """The plain loop and the DataLoader path's ``Engine.train_epoch``, from the same initial weights, epoch by
    epoch in turn on the same batch orders (so a change in the machine's load hits both alike). Seconds per epoch
    of each, the first left out, and their largest weight difference at the end."""
    torch.manual_seed(int(cfg.seed))
    data = load_dataset(cfg.dataset, cfg.cache_dir)
    model = build_recipe(cfg, device).build_model(data).to(device)
    optimizer = benchlib.plain_sgd(cfg, model)
    engine = Engine(build_recipe(cfg, device), data, len(orders), int(cfg.seed))
    plain, ours = [], []
    for epoch, order in enumerate(orders):
        batches = plain_batches(dataset, order, int(cfg.trainer.batch_size), device, workers)
        plain += benchlib.plain_epochs(model, optimizer, [batches])
        start = time.perf_counter()
        engine.train_epoch(epoch, order)
        ours.append(time.perf_counter() - start)
    difference = max(
        float((a - b).abs().max())
        for a, b in zip(model.state_dict().values(), engine.model.state_dict().values(), strict=True)
    )
    return plain[1:], ours[1:], difference


def main() -> None:
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=CIFAR10, help="a CIFAR-10 image folder (train/, test/)")
    parser.add_argument("--per-class", type=int, help="training images per class (default 200; --quick 10)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (both sides)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.set_defaults(repeats=3)
    args = parser.parse_args()
    benchlib.apply_threads(args)
    if not (args.root / "train").is_dir():
        raise SystemExit(f"no CIFAR-10 image folder at {args.root} (expected {args.root}/train/<class>/*)")
    sizes = dict(QUICK if args.quick else FULL)
    if args.per_class:
        sizes["per_class"] = args.per_class
    repeats = 1 if args.quick else args.repeats
    logging.getLogger("datacull").setLevel(logging.WARNING)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="bench-dataloader-") as folder:
        work = Path(folder)
        cache = work / "cache"
        cfg = {path: config(path, args, sizes, cache) for path in ("custom", "imagefolder")}
        dataset = CifarTensors(True, str(args.root), sizes["per_class"], str(cache))
        times: dict[str, list[float]] = {"plain": [], "engine": [], "custom": [], "imagefolder": []}
        bookkeeping: dict[str, list[float]] = {"custom": [], "imagefolder": []}
        generator = torch.Generator().manual_seed(2)
        weight_diff = 0.0
        for repeat in range(repeats):  # interleaved, so that a change in the machine's load hits every arm
            orders = [torch.randperm(len(dataset), generator=generator) for _ in range(sizes["epochs"] + 1)]
            plain, engine, difference = paired_epochs(cfg["custom"], dataset, device, orders, args.workers)
            times["plain"] += plain
            times["engine"] += engine
            weight_diff = max(weight_diff, difference)
            for path in ("custom", "imagefolder"):
                run = work / f"run-{repeat}-{path}"
                intervals = benchlib.runner_epoch_times(cfg[path], run)
                times[path] += intervals
                # what the runner does between two epochs' training: the interval less the epoch's train_time_s
                trained = pd.read_csv(run / "metrics.csv").train_time_s.tolist()[1 : len(intervals) + 1]
                bookkeeping[path] += [
                    interval - train for interval, train in zip(intervals, trained, strict=True)
                ]

    stats = {arm: benchlib.summary(seconds) for arm, seconds in times.items()}
    plain = stats["plain"]["median_s"]
    ratios = {arm: stats[arm]["median_s"] / plain for arm in stats}
    names = {
        "plain": "plain loop over the DataLoader",
        "engine": "`Engine.train_epoch`, DataLoader path (epochs alternating with the plain loop's)",
        "custom": "`datacull train`, DataLoader path (`dataset=custom`)",
        "imagefolder": "`datacull train`, resident path (`dataset=imagefolder`)",
    }
    goals = {
        arm: f"≤ {GOAL:.2f}× {benchlib.verdict(ratios[arm] <= GOAL, args.quick)}"
        for arm in ("engine", "custom")
    }
    rows = [
        [names[arm], benchlib.fmt_summary(stats[arm]), f"{ratios[arm]:.3f}", goals.get(arm, "—")]
        for arm in names
    ]
    text = benchlib.table(["", "epoch time: median (min–max)", "÷ plain loop", "goal"], rows)
    text += (
        "\n\nthe plain loop and Engine.train_epoch on the same batch orders: largest weight difference "
        f"{weight_diff:.2g}; the runner's own work between two epochs' training (sampler, metrics.csv, "
        "checkpoint.pt), median: "
        + ", ".join(f"{path} {benchlib.fmt_seconds(statistics.median(b))}" for path, b in bookkeeping.items())
    )
    count = len(dataset)
    title = (
        f"DataLoader path: cnn (width {sizes['width']}) on {count:,} CIFAR-10 images, batch {args.batch}, "
        f"{args.workers} workers, {device.type}"
    )
    results = {
        "sizes": sizes,
        "images": count,
        "repeats": repeats,
        "epoch_times": stats,
        "ratio_to_plain": ratios,
        "bookkeeping_s": {path: benchlib.summary(seconds) for path, seconds in bookkeeping.items()},
        "weight_diff": weight_diff,
    }
    benchlib.report(args, title, text, results)
    benchlib.require_same_weights(weight_diff, "the DataLoader path")


if __name__ == "__main__":
    main()
