"""Library against the original: per-epoch logging, AUM and TDDS of datacull and of ``datacull==1.0.2``.

Both packages have the import name ``datacull``, so the original is installed out of tree (``pip install
--target``) and each side runs in its own isolated interpreter (``python -I``) with only its own package
directory in front of ``sys.path``. Both log the same synthetic logits trajectory (the same batches in the
same order) through their documented API, then compute AUM and TDDS from what they logged.

Agreement is checked where the definitions coincide: AUM in probability space (the original's only mode)
must match to float tolerance. For TDDS the original sums squared deviations where the official TDDS code
(and datacull) takes their L2 norm; the benchmark recomputes the sum-of-squares variant from datacull's own
``kl_terms`` and checks the original against it, and checks datacull against the norm variant.

    python scripts/bench_library.py             # N=50,000, 10 classes, 20 epochs, batch 256, window 10
    python scripts/bench_library.py --quick     # a few seconds; asserts agreement
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

ORIGINAL_VERSION = "1.0.2"
#: Outside the checkout, so that the tests leave nothing in it; $DATACULL_BENCH_DIR moves it.
DEFAULT_ORIGINAL_DIR = (
    Path(os.environ.get("DATACULL_BENCH_DIR", Path.home() / ".cache" / "datacull" / "bench"))
    / f"original-{ORIGINAL_VERSION}"
)
#: Exit status meaning "the original package could not be installed" (e.g. no network): tests skip on it.
UNAVAILABLE = 75
FULL = {"samples": 50_000, "classes": 10, "epochs": 20, "batch": 256, "window": 10}
QUICK = {"samples": 1_500, "classes": 10, "epochs": 5, "batch": 256, "window": 3}
DECAY = 0.9


def ensure_original(directory: Path) -> Path:
    """The original package installed in ``directory`` (installed once, then reused).

    ``datacull`` itself without its dependencies (torch, numpy, tqdm come from this environment); orjsonl
    with its own (orjson, xopen), which this environment does not otherwise need.
    """
    if (directory / "datacull" / "__init__.py").exists() and (directory / "orjsonl").is_dir():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".original-", dir=directory.parent))
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(staging),
    ]
    for command in (pip + ["--no-deps", f"datacull=={ORIGINAL_VERSION}"], pip + ["orjsonl"]):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["pip failed"]
            print(f"original datacull=={ORIGINAL_VERSION} is not installable here: {tail[0]}")
            raise SystemExit(UNAVAILABLE)
    try:
        staging.rename(directory)
    except OSError:  # another process installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def make_inputs(work: Path, sizes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """A logits trajectory that learns: each sample's assigned-class logit drifts up at its own speed, with
    noise, and every epoch visits the samples in a new random order."""
    rng = np.random.default_rng(seed)
    n, c, epochs = sizes["samples"], sizes["classes"], sizes["epochs"]
    labels = rng.integers(0, c, n)
    speed = rng.normal(0.3, 0.2, n)
    base = rng.normal(0.0, 1.0, (n, c))
    logits = np.empty((epochs, n, c), dtype=np.float32)
    for epoch in range(epochs):
        logits[epoch] = base + rng.normal(0.0, 0.5, (n, c))
        logits[epoch, np.arange(n), labels] += speed * epoch
    orders = np.stack([rng.permutation(n) for _ in range(epochs)])
    inputs = {"labels": labels, "logits": logits, "orders": orders}
    np.savez(work / "inputs.npz", **inputs)
    return inputs


def worker(side: str, package_dir: Path, work: Path, repeats: int, sizes: dict[str, int]) -> None:
    """One package's timings, in an interpreter that sees only ``package_dir``'s ``datacull``."""
    sys.path.insert(0, str(package_dir))
    from datacull.methods.CCS import AUMImportance
    from datacull.methods.TDDS import TDDSImportance

    import datacull

    if not Path(datacull.__file__).resolve().is_relative_to(package_dir.resolve()):
        raise SystemExit(f"{side}: imported datacull from {datacull.__file__}, not from {package_dir}")

    class Synthetic(torch.utils.data.Dataset):
        def __init__(self, labels):
            self.targets = labels

        def __len__(self):
            return len(self.targets)

        def __getitem__(self, index):
            return torch.zeros(1), int(self.targets[index])

    inputs = np.load(work / "inputs.npz")
    epochs, batch = sizes["epochs"], sizes["batch"]
    batches = []
    for epoch in range(epochs):
        order = torch.from_numpy(inputs["orders"][epoch])
        logits = torch.from_numpy(inputs["logits"][epoch])
        batches.append([(index, logits[index]) for index in order.split(batch)])
    dataset = datacull.DCDataset(Synthetic(inputs["labels"]))
    trajectory = work / side / "logits"
    trajectory.mkdir(parents=True)
    logger = datacull.DCLogger(str(trajectory) + "/")  # the original concatenates the directory and the name
    end_of_epoch = getattr(logger, "flush", lambda: None)  # the original writes in log_metric itself

    logging_seconds = []
    for epoch in range(epochs):

        def log_one_epoch(epoch=epoch):
            for index, values in batches[epoch]:
                logger.log_metric(epoch, index, values)
            end_of_epoch()

        logging_seconds += benchlib.time_calls(log_one_epoch, 1)

    extra = {"probability_space": True} if side == "datacull" else {}
    results = {"logging": logging_seconds}

    def aum():
        return AUMImportance(
            dataset, trajectory_length=epochs, logger_object=logger, **extra
        ).compute_importance()

    def tdds():
        return TDDSImportance(
            dataset, trajectory_length=epochs, window_size=sizes["window"], decay=DECAY, logger_object=logger
        ).compute_importance()

    for name, compute in (("aum", aum), ("tdds", tdds)):
        np.save(
            work / f"{side}_{name}.npy", np.asarray(compute(), dtype=np.float64)
        )  # warm-up, and the scores
        results[name] = benchlib.time_calls(compute, repeats)
    if side == "datacull":  # the original ran first: read its .jsonl trajectory
        results.update(read_original_folder(work, dataset, epochs, repeats))
    (work / f"{side}_times.json").write_text(json.dumps(results))


def read_original_folder(work: Path, dataset, epochs: int, repeats: int) -> dict[str, list[float]]:
    """datacull reading the trajectory the original wrote: every epoch parsed (what reading it directly costs),
    the folder converted to .npy (parse and write, once), and AUM on the converted folder."""
    from datacull.methods.CCS import AUMImportance

    from datacull import DCLogger, legacy

    source = work / "original" / "logits"
    folder = work / "datacull_reads_original" / "logits"
    shutil.copytree(source, folder)

    def parse():
        for epoch in range(epochs):
            legacy.parse_jsonl(folder / f"epoch{epoch}.jsonl", len(dataset))

    def convert():
        for path in [*folder.glob("epoch*.npy"), folder / legacy.MARKER]:
            path.unlink(missing_ok=True)
        legacy.convert_folder(folder, len(dataset))

    def aum():
        logger = DCLogger(folder)
        return AUMImportance(dataset, epochs, logger, probability_space=True).compute_importance()

    results = {"parse_original": benchlib.time_calls(parse, repeats)}
    results["convert_original"] = benchlib.time_calls(convert, repeats)
    np.save(work / "datacull_on_original_aum.npy", np.asarray(aum(), dtype=np.float64))
    results["aum_on_converted"] = benchlib.time_calls(aum, repeats)
    return results


def tdds_window_terms(logits: np.ndarray, window: int) -> torch.Tensor:
    """Per TDDS window, the squared deviations of datacull's ``kl_terms`` from their window mean, summed: (K, N)."""
    from datacull.methods.tdds import kl_terms

    terms = kl_terms(torch.softmax(torch.from_numpy(logits).double(), dim=-1))
    windows = terms.unfold(0, window - 1, 1)
    return ((windows - windows.mean(-1, keepdim=True)) ** 2).sum(-1)


def ema(per_window: torch.Tensor) -> np.ndarray:
    """decay * (1 - decay)^(K-1-k) weighted sum over windows k: both packages' moving average."""

    count = per_window.shape[0]
    weights = DECAY * (1.0 - DECAY) ** torch.arange(count - 1, -1, -1, dtype=torch.float64)
    return (weights[:, None] * per_window).sum(0).numpy()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(values, kind="stable"), kind="stable") for values in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def agreement(work: Path, inputs: dict[str, np.ndarray], window: int) -> dict[str, float]:
    load = {
        name: np.load(work / f"{name}.npy")
        for name in ("original_aum", "datacull_aum", "original_tdds", "datacull_tdds")
    }
    squared = tdds_window_terms(inputs["logits"], window)
    sum_of_squares, l2_norm = ema(squared), ema(squared.sqrt())
    on_original = np.load(work / "datacull_on_original_aum.npy")
    return {
        "aum_max_abs_diff": float(np.abs(load["original_aum"] - load["datacull_aum"]).max()),
        "aum_of_its_jsonl_max_abs_diff": float(np.abs(load["original_aum"] - on_original).max()),
        "tdds_original_vs_sum_of_squares_scaled_diff": scaled_difference(
            load["original_tdds"], sum_of_squares
        ),
        "tdds_datacull_vs_l2_norm_scaled_diff": scaled_difference(load["datacull_tdds"], l2_norm),
        "tdds_spearman_original_vs_sum_of_squares": spearman(load["original_tdds"], sum_of_squares),
        "tdds_spearman_original_vs_datacull": spearman(load["original_tdds"], load["datacull_tdds"]),
    }


def scaled_difference(values: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference as a fraction of the largest reference score."""
    return float(np.abs(values - reference).max() / np.abs(reference).max())


GOALS = {"logging": 200.0, "aum": 100.0, "tdds": 100.0}
#: datacull reading the original's trajectory: what each way of reading it costs (read_original_folder).
READING = {
    "parse_original": "parse every epoch",
    "convert_original": "convert once",
    "aum_on_converted": "AUM after",
}
#: The original computes in float32 with an exact log-softmax; datacull adds the official 1e-8 inside the log.
TOLERANCE = {
    "aum_max_abs_diff": 1e-5,
    "aum_of_its_jsonl_max_abs_diff": 1e-6,
    "tdds_original_vs_sum_of_squares_scaled_diff": 1e-4,
    "tdds_datacull_vs_l2_norm_scaled_diff": 1e-5,
}


def main() -> None:
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--original-dir",
        type=Path,
        default=DEFAULT_ORIGINAL_DIR,
        help="where datacull==1.0.2 is (installed if absent)",
    )
    parser.add_argument("--worker", choices=["original", "datacull"], help="internal: run one side")
    parser.add_argument("--work", type=Path, help="internal: the shared work folder")
    args = parser.parse_args()
    benchlib.apply_threads(args)
    sizes = QUICK if args.quick else FULL
    repeats = 1 if args.quick else args.repeats
    if args.worker:
        package = args.original_dir if args.worker == "original" else benchlib.REPO
        worker(args.worker, package, args.work, repeats, sizes)
        return

    original = ensure_original(args.original_dir)
    sys.path.insert(0, str(benchlib.REPO))
    with tempfile.TemporaryDirectory(prefix="bench-library-") as folder:
        work = Path(folder)
        inputs = make_inputs(work, sizes)
        times = {}
        for side in ("original", "datacull"):
            command = [
                sys.executable,
                "-I",
                __file__,
                "--worker",
                side,
                "--work",
                str(work),
                "--original-dir",
                str(original),
                "--repeats",
                str(repeats),
            ]
            quiet = {**os.environ, "TQDM_DISABLE": "1"}  # the original's progress bars
            options = (["--quick"] if args.quick else []) + (
                [f"--threads={args.threads}"] if args.threads else []
            )
            subprocess.run(command + options, check=True, env=quiet)
            times[side] = json.loads((work / f"{side}_times.json").read_text())
        agrees = agreement(work, inputs, sizes["window"])

    rows, results = [], {"sizes": sizes, "repeats": repeats, "agreement": agrees, "timings": {}}
    for name, label in (
        ("logging", "logging, per epoch"),
        ("aum", "AUM"),
        ("tdds", f"TDDS (window {sizes['window']})"),
    ):
        ours, theirs = benchlib.summary(times["datacull"][name]), benchlib.summary(times["original"][name])
        ratio = theirs["median_s"] / ours["median_s"]
        results["timings"][name] = {
            "datacull": ours,
            "original": theirs,
            "speedup": ratio,
            "goal": GOALS[name],
        }
        rows.append(
            [
                label,
                f"{benchlib.fmt_seconds(theirs['median_s'])} ({benchlib.fmt_seconds(theirs['min_s'])}–{benchlib.fmt_seconds(theirs['max_s'])})",
                f"{benchlib.fmt_seconds(ours['median_s'])} ({benchlib.fmt_seconds(ours['min_s'])}–{benchlib.fmt_seconds(ours['max_s'])})",
                f"{ratio:.0f}×",
                f"≥ {GOALS[name]:.0f}× {benchlib.verdict(ratio >= GOALS[name], args.quick)}",
            ]
        )
    reading = {name: benchlib.summary(times["datacull"][name]) for name in READING}
    results["reading_original_trajectory"] = reading
    original_aum = benchlib.summary(times["original"]["aum"])["median_s"]
    rows.append(
        [
            f"{ORIGINAL_VERSION}'s .jsonl folder: read by datacull",
            f"its AUM: {benchlib.fmt_seconds(original_aum)}",
            "; ".join(
                f"{label} {benchlib.fmt_seconds(reading[name]['median_s'])}"
                for name, label in READING.items()
            ),
            f"{original_aum / (reading['convert_original']['median_s'] + reading['aum_on_converted']['median_s']):.0f}× (convert + AUM)",
            "—",
        ]
    )
    text = benchlib.table(
        [
            "",
            f"datacull {ORIGINAL_VERSION}: median (min–max)",
            "datacull: median (min–max)",
            "speed-up",
            "goal",
        ],
        rows,
    )
    text += "\n\n" + benchlib.table(
        ["agreement", "value", "tolerance"],
        [[key, f"{value:.3g}", f"{TOLERANCE.get(key, '—')}"] for key, value in agrees.items()],
    )
    title = f"Library vs datacull=={ORIGINAL_VERSION}: N={sizes['samples']:,}, {sizes['classes']} classes, {sizes['epochs']} epochs, batch {sizes['batch']}"
    benchlib.report(args, title, text, results)
    failed = [key for key, limit in TOLERANCE.items() if not agrees[key] <= limit]
    if failed or not agrees["tdds_spearman_original_vs_sum_of_squares"] > 0.999:
        raise SystemExit(f"the packages disagree: {failed or 'TDDS ranks'} ({agrees})")


if __name__ == "__main__":
    main()
