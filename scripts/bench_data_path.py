"""Data path: datacull's in-memory batched augmentation against torchvision's per-sample PIL transforms.

Both sides deliver the same thing, normalized float batches of CIFAR-10 training images with a random
crop (4 pixels of zero padding) and a random horizontal flip, from ``../shared/data/cifar10``:

- datacull: the ``imagefolder`` dataset decoded once into a uint8 tensor (cached under ``--cache-dir``;
  the one-off decode is reported, not counted), then ``BatchAugment`` on whole batches, as the runner does;
- torchvision: ``ImageFolder`` + ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``,
  ``Normalize`` through a ``DataLoader`` with ``--workers`` persistent worker processes.

Images per second over an epoch; the first epoch of each side is a warm-up. ``--quick`` also checks that
the two produce the same pixels for the same crop offsets and flips.

    python scripts/bench_data_path.py                  # 1,000 images per class, batch 256, 5 epochs each
    python scripts/bench_data_path.py --quick          # 20 per class; asserts equal augmentations
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

sys.path.insert(0, str(benchlib.REPO))
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from datacull.datasets.common import balanced_subset  # noqa: E402
from datacull.engine import BatchAugment  # noqa: E402
from datacull.parts import load_dataset  # noqa: E402

CIFAR10 = benchlib.SHARED_CIFAR10
GOAL = 5.0
PADDING = 4


def datacull_images(root: Path, per_class: int, cache_dir: Path):
    """The runner's dataset loading: decoded (or read from the cache) into uint8 tensors, and how long it took."""
    cfg = OmegaConf.create(
        {"name": "imagefolder", "root": str(root), "subset_per_class": per_class, "test_subset_per_class": 1}
    )
    start = time.perf_counter()
    data = load_dataset(cfg, cache_dir)
    return data, time.perf_counter() - start


def statistics_of(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the training pixels, as the engine computes them."""
    pixels = images.float().div(255.0)
    return pixels.mean(dim=(0, 2, 3)), pixels.std(dim=(0, 2, 3)).clamp_min(1e-3)


def datacull_epochs(images: torch.Tensor, batch: int, epochs: int) -> list[float]:
    """Seconds per epoch of shuffled batches through ``BatchAugment``."""
    mean, std = statistics_of(images)
    generator = torch.Generator().manual_seed(0)
    augment = BatchAugment(PADDING, True, mean, std, generator)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for index in torch.randperm(images.shape[0], generator=generator).split(batch):
            augment(images[index], augment.draw(index.numel()))
        seconds.append(time.perf_counter() - start)
    return seconds


def torchvision_loader(root: Path, per_class: int, images: torch.Tensor, batch: int, workers: int):
    """ImageFolder over the same files, per-sample PIL transforms, a DataLoader with persistent workers."""
    from torchvision import datasets, transforms

    mean, std = statistics_of(images)
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=PADDING),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean.tolist(), std.tolist()),
        ]
    )
    folder = datasets.ImageFolder(str(root / "train"), transform=transform)
    subset = torch.utils.data.Subset(folder, balanced_subset(folder.targets, per_class, 0).tolist())
    return torch.utils.data.DataLoader(
        subset, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )


def torchvision_epochs(loader, epochs: int) -> list[float]:
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _batch in loader:
            pass
        seconds.append(time.perf_counter() - start)
    return seconds


def check_same_augmentation(root: Path, per_class: int, images: torch.Tensor, count: int = 16) -> float:
    """Largest difference between BatchAugment and torchvision's functional pad/crop/flip for the same draws."""
    from torchvision import datasets
    from torchvision.transforms import functional

    folder = datasets.ImageFolder(str(root / "train"))
    chosen = balanced_subset(folder.targets, per_class, 0)[:count].tolist()
    mean, std = statistics_of(images)
    augment = BatchAugment(PADDING, True, mean, std, torch.Generator().manual_seed(3))
    draws = augment.draw(count)
    ours = augment(images[:count], draws)
    largest = 0.0
    for position, file_index in enumerate(chosen):
        top, left = (int(v) for v in draws["offsets"][:, position])
        picture = functional.crop(functional.pad(folder[file_index][0], PADDING), top, left, 32, 32)
        if draws["flips"][position]:
            picture = functional.hflip(picture)
        theirs = functional.normalize(functional.to_tensor(picture), mean.tolist(), std.tolist())
        largest = max(largest, float((theirs - ours[position]).abs().max()))
    return largest


def main() -> None:
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=CIFAR10, help="an ImageFolder root with train/ and test/"
    )
    parser.add_argument("--per-class", type=int, default=1000, help="training images per class")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader worker processes (torchvision side)"
    )
    parser.add_argument("--cache-dir", type=Path, default=benchlib.REPO / "outputs" / "bench" / "cache")
    args = parser.parse_args()
    benchlib.apply_threads(args)
    if not (args.root / "train").is_dir():
        raise SystemExit(f"no CIFAR-10 image folder at {args.root} (expected {args.root}/train/<class>/*)")
    per_class = 20 if args.quick else args.per_class
    repeats = 1 if args.quick else args.repeats
    data, load_seconds = datacull_images(args.root, per_class, args.cache_dir)
    images = data.train_x
    difference = check_same_augmentation(args.root, per_class, images)
    count = images.shape[0]
    ours = datacull_epochs(images, args.batch, repeats + 1)[1:]
    theirs = torchvision_epochs(
        torchvision_loader(args.root, per_class, images, args.batch, args.workers), repeats + 1
    )[1:]

    rates = {
        name: [count / s for s in seconds] for name, seconds in (("datacull", ours), ("torchvision", theirs))
    }
    ratio = statistics.median(rates["datacull"]) / statistics.median(rates["torchvision"])
    rows = [
        [name, f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"]
        for name, values in (
            ("torchvision ImageFolder + PIL transforms, DataLoader", rates["torchvision"]),
            ("datacull in-memory BatchAugment", rates["datacull"]),
        )
    ]
    text = benchlib.table(["pipeline", "images/s: median (min–max)"], rows)
    text += f"\n\nspeed-up {ratio:.1f}× (goal ≥ {GOAL:.0f}×: {benchlib.verdict(ratio >= GOAL, args.quick)}); "
    text += f"one-off decode / cache read of {count:,} images: {load_seconds:.2f} s; "
    text += f"same crop and flip, largest pixel difference {difference:.2g}"
    title = f"Data path: CIFAR-10, {count:,} training images, batch {args.batch}, {args.workers} DataLoader workers"
    results = {
        "images": count,
        "repeats": repeats,
        "images_per_s": rates,
        "speedup": ratio,
        "decode_s": load_seconds,
        "max_pixel_diff": difference,
    }
    benchlib.report(args, title, text, results)
    if not difference < 1e-5:
        raise SystemExit(
            f"BatchAugment and torchvision disagree for the same crop and flip (max diff {difference})"
        )


if __name__ == "__main__":
    main()
