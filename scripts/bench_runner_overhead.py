"""Runner overhead: a plain hand-written PyTorch loop against ``datacull train``'s machinery, epoch by epoch.

Same model (the registered ``cnn``), same data (synthetic uint8 tensors of CIFAR-10's shape, registered as a
dataset), same optimizer (SGD, Nesterov momentum, weight decay), constant learning rate, no augmentation
(the data path is measured by ``bench_data_path.py``). The datacull side is the real runner,
``datacull.runner.train``: sampler, per-sample losses, metrics, ``metrics.csv`` and ``checkpoint.pt`` after
every epoch; the test set is evaluated only after the last epoch, as the plain loop does not evaluate.
Its epoch time is the interval between two consecutive epochs' ends, so everything done per epoch counts.
The first epoch (warm-up) and the last (evaluation) are not timed.

At pruning rate p the runner uses the static ``random`` sampler, which trains on round((1 - p) N) samples;
its epoch time is compared with the plain loop's full-data epoch. ``--quick`` also checks that the
runner's training step (``Engine.train_epoch``) and the plain loop, given the same batch order, end with
the same weights.

    python scripts/bench_runner_overhead.py              # N=2,048, cnn width 16, batch 128, 5 x 2 timed epochs
    python scripts/bench_runner_overhead.py --quick      # a few seconds; asserts equal weights
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

sys.path.insert(0, str(benchlib.REPO))
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from datacull import register_dataset  # noqa: E402
from datacull.datasets import ImageData  # noqa: E402
from datacull.engine import Engine  # noqa: E402
from datacull.parts import resolve_device  # noqa: E402
from datacull.recipe import build_recipe  # noqa: E402

FULL = {"samples": 2048, "test": 256, "batch": 128, "width": 16, "epochs": 4, "rates": [0.0, 0.5, 0.9]}
QUICK = {"samples": 128, "test": 32, "batch": 32, "width": 4, "epochs": 3, "rates": [0.0, 0.5]}
OVERHEAD_GOAL = 0.03
DATASET = "bench_synthetic"
SIZES = dict(FULL)


@register_dataset(DATASET)
def synthetic(cfg, cache_dir) -> ImageData:
    """Random CIFAR-10-shaped images whose class shifts the mean: a learnable, download-free dataset."""
    generator = torch.Generator().manual_seed(0)

    def split(count):
        labels = torch.randint(0, 10, (count,), generator=generator)
        noise = torch.randint(0, 160, (count, 3, 32, 32), generator=generator)
        return (noise + 9 * labels[:, None, None, None]).to(torch.uint8), labels

    train_x, train_y = split(SIZES["samples"])
    test_x, test_y = split(SIZES["test"])
    return ImageData(train_x, train_y, test_x, test_y, classes=[str(c) for c in range(10)])


def config(rate: float, epochs: int, device: str, threads: int | None, cache_dir: Path):
    """The runner's config for this benchmark (as ``datacull train`` would compose it, with overrides)."""
    from hydra import compose, initialize_config_dir

    from datacull.paths import config_dir

    overrides = [
        "model=cnn",
        f"model.width={SIZES['width']}",
        "importance=uniform",
        "sampler=random",
        f"sampler.pruning_rate={rate}",
        "optimizer=sgd",
        "scheduler=constant",
        f"trainer.epochs={epochs}",
        f"trainer.batch_size={SIZES['batch']}",
        f"trainer.eval_every={epochs}",
        f"trainer.device={device}",
        "trainer.progress=log",
        f"cache_dir={cache_dir}",
        f"trainer.num_threads={threads or 'null'}",
    ]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    cfg.dataset = {"name": DATASET, "val_fraction": 0.0, "augment": {"crop_padding": 0, "flip": False}}
    return cfg


def plain_loop(
    cfg, data: ImageData, device: torch.device, orders: list[torch.Tensor]
) -> tuple[list[float], torch.nn.Module]:
    """What a user writes by hand: normalize, forward, cross-entropy, backward, step. Seconds per epoch."""
    torch.manual_seed(int(cfg.seed))
    model = build_recipe(cfg, device).build_model(data).to(device)
    # statistics summed in float64, as the runner's are: float32 sums differ by ~1e-7 from one CPU to another,
    # which eight SGD steps grow into weight differences of ~1e-3
    pixels = data.train_x.double().div(255.0)
    mean = pixels.mean(dim=(0, 2, 3)).float().view(1, -1, 1, 1).to(device)
    std = pixels.std(dim=(0, 2, 3)).float().clamp_min(1e-3).view(1, -1, 1, 1).to(device)
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)

    def batches(order: torch.Tensor):
        for batch in order.to(device).split(int(cfg.trainer.batch_size)):
            yield (train_x[batch].float().div_(255.0) - mean) / std, train_y[batch]

    optimizer = benchlib.plain_sgd(cfg, model)
    return benchlib.plain_epochs(model, optimizer, (batches(order) for order in orders)), model


def check_same_training(cfg, data: ImageData, device: torch.device) -> float:
    """Largest weight difference after two epochs of the plain loop and of ``Engine.train_epoch`` on one order."""
    generator = torch.Generator().manual_seed(1)
    orders = [torch.randperm(SIZES["samples"], generator=generator) for _ in range(2)]
    _, plain = plain_loop(cfg, data, device, orders)
    engine = Engine(build_recipe(cfg, device), data, epochs=2, seed=int(cfg.seed))
    for epoch, order in enumerate(orders):
        engine.train_epoch(epoch, order)
    return max(
        float((a - b).abs().max())
        for a, b in zip(plain.state_dict().values(), engine.model.state_dict().values(), strict=True)
    )


def main() -> None:
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args()
    benchlib.apply_threads(args)
    SIZES.update(QUICK if args.quick else FULL)
    repeats = 1 if args.quick else args.repeats
    logging.getLogger("datacull").setLevel(logging.WARNING)
    device = resolve_device(args.device)
    epochs = SIZES["epochs"]
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as folder:
        work = Path(folder)
        cfg = {
            rate: config(rate, epochs, args.device, args.threads, work / "cache") for rate in SIZES["rates"]
        }
        data = synthetic(None, None)
        weight_diff = check_same_training(cfg[0.0], data, device)
        plain, ours = [], {rate: [] for rate in SIZES["rates"]}
        generator = torch.Generator().manual_seed(2)
        for repeat in range(repeats):  # interleaved, so that a change in the machine's load hits both sides
            orders = [torch.randperm(SIZES["samples"], generator=generator) for _ in range(epochs - 1)]
            plain += plain_loop(cfg[0.0], data, device, orders)[0][1:]
            for rate in SIZES["rates"]:
                ours[rate] += benchlib.runner_epoch_times(cfg[rate], work / f"run-{repeat}-{rate}")

    full = statistics.median(plain)
    stats = {"plain": benchlib.summary(plain)}
    rows = [["plain loop, full data", benchlib.fmt_summary(stats["plain"]), "1.000", "—", "—"]]
    for rate in SIZES["rates"]:
        stats[rate] = benchlib.summary(ours[rate])
        ratio = stats[rate]["median_s"] / full
        limit = (1.0 - rate) + OVERHEAD_GOAL
        goal = f"≤ {limit:.2f}× {benchlib.verdict(ratio <= limit, args.quick)}"
        rows.append(
            [
                f"datacull train, p={rate}",
                benchlib.fmt_summary(stats[rate]),
                f"{ratio:.3f}",
                f"{ratio - (1.0 - rate):+.1%}",
                goal,
            ]
        )
    text = benchlib.table(
        ["", "epoch time: median (min–max)", "÷ plain full-data epoch", "overhead vs (1 − p)", "goal"], rows
    )
    text += f"\n\nplain loop vs Engine.train_epoch on the same batch order, 2 epochs: largest weight difference {weight_diff:.2g}"
    title = f"Runner overhead: cnn on {SIZES['samples']:,} CIFAR-shaped samples, batch {SIZES['batch']}, {device.type}"
    results = {
        "sizes": SIZES,
        "repeats": repeats,
        "epoch_times": {str(k): v for k, v in stats.items()},
        "weight_diff": weight_diff,
    }
    benchlib.report(args, title, text, results)
    benchlib.require_same_weights(weight_diff, "the datacull engine")


if __name__ == "__main__":
    main()
