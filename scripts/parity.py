"""Record what each method's official code outputs on the parity suite's fixed inputs (tests/methods/parity/).

    python scripts/parity.py tdds --official ~/src/Dataset-Pruning-TDDS
    python scripts/parity.py all --official-root ~/src      # every method, checkouts named as their repositories

The official code is never part of this repository: this script imports (or, for functions inside scripts,
executes the definitions of) the official functions from a checkout that you cloned yourself, feeds them the inputs
of ``tests/methods/parity/inputs.py`` and writes ``tests/methods/parity/records/<method>.json`` with the repository, its commit and
the function each number came from. ``tests/methods/parity/test_parity.py`` then holds datacull's outputs to these records.

Each official code needs what it imports (RS2: prefetch_generator, einops, ptflops; RCAP: orjsonl; AUM: pandas;
TDDS: scipy; MetriQ: scikit-learn, tqdm); they are not datacull's dependencies. Under the torch the authors pinned,
some numbers differ by what docs/methods.md's "Parity" paragraphs say; the records name the torch that made them.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.methods.parity import inputs  # noqa: E402

#: method -> (repository, a file that must exist in its checkout)
REPOSITORIES = {
    "aum": ("asappresearch/aum", "aum/aum.py"),
    "ccs": ("haizhongzheng/Coverage-centric-coreset-selection", "core/data/Coreset.py"),
    "el2n": ("haizhongzheng/Coverage-centric-coreset-selection", "generate_importance_score.py"),
    "forgetting": ("mtoneva/example_forgetting", "order_examples_by_forgetting.py"),
    "tdds": ("zhangxin-xd/Dataset-Pruning-TDDS", "importance_evaluation.py"),
    "rs2": ("PatrikOkanovic/RS2", "src/DeepCore/deepcore/methods/uniform_no_replacement.py"),
    "metriq": ("avysogorets/fair-data-pruning", "quoters/drop.py"),
    "infobatch": ("NUS-HPC-AI-Lab/InfoBatch", "infobatch/infobatch.py"),
    "rcap": ("atif-hassan/RCAP-dynamic-dataset-pruning", "datacull/methods/RCAP.py"),
}


# ------------------------------------------------------------------------------------------ loading official code
def commit_of(checkout: Path) -> str:
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{checkout} is not a git checkout: the record must name the official commit")
    return result.stdout.strip()


def load_module(path: Path, name: str, argv: list[str] | None = None) -> types.ModuleType:
    """Import the file ``path`` as module ``name`` (``argv``: what its module-level argparse reads)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.argv
    sys.argv = [str(path), *(argv or [])]
    try:
        spec.loader.exec_module(module)
    finally:
        sys.argv = saved
    return module


def load_package(directory: Path, alias: str) -> None:
    """Make the package at ``directory`` importable as ``alias`` (its relative imports then resolve inside it)."""
    spec = importlib.util.spec_from_file_location(
        alias, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)


def script_functions(path: Path, names: list[str], namespace: dict) -> dict:
    """The top-level functions ``names`` of the script ``path``, defined without running the rest of it."""
    tree = ast.parse(path.read_text())
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    missing = set(names) - {node.name for node in wanted}
    if missing:
        raise SystemExit(f"{path} defines no {', '.join(sorted(missing))}: is this the right commit?")
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


@contextlib.contextmanager
def on_path(*directories: Path):
    sys.path[:0] = [str(d) for d in directories]
    try:
        yield
    finally:
        del sys.path[: len(directories)]


def floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def log_softmax_batches(epochs: int) -> list[dict]:
    """CCS's training-dynamics log: one entry per batch with the epoch, the indices and the log-softmax outputs
    (float32 here; the official logger stores float16, see docs/methods.md#ccs)."""
    logits, _ = inputs.trajectory()
    entries = []
    for epoch in range(epochs):
        for batch in inputs.presentation_batches(epoch):
            output = torch.log_softmax(logits[epoch][batch], dim=1)
            entries.append({"epoch": epoch, "idx": batch.clone(), "output": output})
    return entries


# ---------------------------------------------------------------------------------------------------- methods
def record_aum(checkout: Path) -> dict:
    with on_path(checkout):
        from aum import AUMCalculator
    logits, _ = inputs.trajectory()
    labels = inputs.labels()
    cases = []
    for epochs in (inputs.EPOCHS, 5):
        calculator = AUMCalculator(tempfile.mkdtemp(), compressed=True)
        for epoch in range(epochs):
            for batch in inputs.presentation_batches(epoch):
                calculator.update(logits[epoch][batch], labels[batch], batch.tolist())
        scores = [calculator.sums[i] / calculator.counts[i] for i in range(inputs.NUM_SAMPLES)]
        cases.append({"params": {"trajectory_length": epochs}, "scores": floats(scores)})
    return {
        "function": "aum/aum.py: AUMCalculator.update per presentation batch, then sums / counts (as finalize)",
        "cases": cases,
    }


def record_ccs(checkout: Path) -> dict:
    with on_path(checkout):
        from core.data.Coreset import CoresetSelection
    scores = inputs.spread_scores()
    cases = []
    for pruning_rate, beta, kept_fraction in (
        (0.5, 0.0, 0.5),
        (0.9, 0.0, 0.1),
        (0.7, 0.1, 0.3),
        (0.9, 0.3, 0.1),
    ):
        num_cut = int(beta * inputs.NUM_SAMPLES)  # train.py: mis_num = int(args.mis_ratio * total_num)
        coreset_num = int(kept_fraction * inputs.NUM_SAMPLES)  # train.py: int(args.coreset_ratio * total_num)
        selections = []
        for seed in range(3):
            torch.manual_seed(seed)
            data_score = {"accumulated_margin": scores.clone()}
            data_score, easy_index = CoresetSelection.mislabel_mask(
                data_score, "accumulated_margin", num_cut, False, "accumulated_margin"
            )
            chosen, _ = CoresetSelection.stratified_sampling(data_score, "accumulated_margin", coreset_num)
            selections.append(ints(easy_index[torch.tensor(chosen, dtype=torch.long)]))
        cut = sorted(set(range(inputs.NUM_SAMPLES)) - set(ints(easy_index)))
        cases.append(
            {
                "params": {"pruning_rate": pruning_rate, "beta": beta},
                "cut": cut,
                "selections": selections,
            }
        )
    namespace = script_functions(
        checkout / "generate_importance_score.py", ["training_dynamics_metrics"], {"torch": torch}
    )
    dataset = [(i, (None, int(y))) for i, y in enumerate(inputs.labels())]
    importance: dict = {}
    namespace["training_dynamics_metrics"](log_softmax_batches(inputs.EPOCHS), dataset, importance)
    return {
        "function": "core/data/Coreset.py: CoresetSelection.mislabel_mask and stratified_sampling (seeds 0-2, "
        "torch.manual_seed); generate_importance_score.py: training_dynamics_metrics (accumulated_margin)",
        "cases": cases,
        "accumulated_margin": {"epochs": inputs.EPOCHS, "scores": floats(importance["accumulated_margin"])},
    }


def record_el2n(checkout: Path) -> dict:
    max_epoch = 10
    namespace = script_functions(
        checkout / "generate_importance_score.py",
        ["EL2N"],
        {"torch": torch, "num_classes": inputs.NUM_CLASSES},
    )
    dataset = [(i, (None, int(y))) for i, y in enumerate(inputs.labels())]
    importance: dict = {}
    namespace["EL2N"](log_softmax_batches(inputs.EPOCHS), dataset, importance, max_epoch=max_epoch)
    return {
        "function": "generate_importance_score.py: EL2N(td_log, ..., max_epoch=10), the sum over epochs 0-9",
        "cases": [{"params": {"trajectory_length": max_epoch}, "sum_scores": floats(importance["el2n"])}],
    }


def record_forgetting(checkout: Path) -> dict:
    module = load_module(checkout / "order_examples_by_forgetting.py", "official_forgetting")
    logits, _ = inputs.trajectory()
    correct = (logits.argmax(-1) == inputs.labels()).int()  # (T, N): one presentation per epoch
    cases = []
    for epochs in (inputs.EPOCHS, 6):
        diag_stats = {i: [[], correct[:epochs, i].tolist(), []] for i in range(inputs.NUM_SAMPLES)}
        _, unlearned, _, first_learned = module.compute_forgetting_statistics(diag_stats, epochs)
        order, counts = module.sort_examples_by_forgetting([unlearned], [first_learned], epochs)
        by_sample = np.empty(inputs.NUM_SAMPLES)
        by_sample[np.asarray(order, dtype=np.int64)] = counts
        cases.append({"params": {"trajectory_length": epochs}, "scores": ints(by_sample)})
    return {
        "function": "order_examples_by_forgetting.py: compute_forgetting_statistics, sort_examples_by_forgetting",
        "cases": cases,
    }


def record_tdds(checkout: Path) -> dict:
    logits, orders = inputs.trajectory()
    cases = []
    for epochs, window, decay in ((12, 5, 0.9), (10, 10, 0.9), (12, 4, 0.5)):
        with tempfile.TemporaryDirectory() as folder:
            argv = ["--trajectory_len", str(epochs), "--window_size", str(window), "--decay", str(decay)]
            module = load_module(
                checkout / "importance_evaluation.py", "official_tdds", [*argv, "--mask_path", folder + "/"]
            )
            presented = np.stack([logits[e][orders[e]].numpy() for e in range(epochs)])
            with contextlib.redirect_stdout(None):
                module.generate(presented, np.zeros(presented.shape[:2]), orders[:epochs].numpy())
            mask = np.load(f"{folder}/data_mask_win{window}_ep{epochs}.npy")
            sorted_scores = np.load(f"{folder}/score_win{window}_ep{epochs}.npy")
        scores = np.empty(inputs.NUM_SAMPLES)
        scores[mask] = sorted_scores
        kept = {}
        for pruning_rate in (0.3, 0.7):
            kept[str(pruning_rate)] = sorted(
                ints(tdds_official_subset(checkout, mask, sorted_scores, pruning_rate))
            )
        cases.append(
            {
                "params": {"trajectory_length": epochs, "window_size": window, "decay": decay},
                "scores": floats(scores),
                "kept": kept,
            }
        )
    counts = []
    for num_samples in (25, 500, 1997):
        for pruning_rate in (0.1, 0.3, 0.5, 0.7, 0.9):
            mask = np.arange(num_samples)
            kept = tdds_official_subset(checkout, mask, np.linspace(0, 1, num_samples), pruning_rate)
            counts.append([num_samples, pruning_rate, len(kept)])
    return {
        "function": "importance_evaluation.py: generate (scores, data_mask); data_subset.py: load_cifar10_sub "
        "(the kept subset, with a stand-in CIFAR10 of the same length)",
        "cases": cases,
        "kept_counts": counts,
    }


def tdds_official_subset(checkout: Path, mask: np.ndarray, sorted_scores: np.ndarray, pruning_rate: float):
    """The indices ``data_subset.load_cifar10_sub`` keeps, with the data set replaced by labels only."""
    module = load_module(checkout / "data_subset.py", "official_tdds_subset")

    class StandIn(torch.utils.data.Dataset):
        def __init__(self, *args, train=True, **kwargs):
            self.targets = [0] * (len(mask) if train else 1)

        def __len__(self):
            return len(self.targets)

    module.dset = types.SimpleNamespace(CIFAR10=StandIn)
    args = types.SimpleNamespace(data_path="", subset_rate=pruning_rate, batch_size=16, workers=0)
    with contextlib.redirect_stdout(None):
        train_loader, _ = module.load_cifar10_sub(args, mask, sorted_scores)
    return train_loader.dataset.indices


def record_rs2(checkout: Path) -> dict:
    with on_path(checkout, checkout / "src" / "DeepCore"):
        import deepcore.methods as methods
        import deepcore.nets as nets
        import utils
    rounds = []
    for num_samples, fraction, batch in ((25, 0.1, 2), (500, 0.3, 16), (500, 0.1, 64)):
        method = methods.UniformNoReplacement(
            list(range(num_samples)), types.SimpleNamespace(n_class=1), fraction, random_seed=0
        )
        sizes, trained, passes = [], [], []
        seen = np.zeros(num_samples, dtype=np.int64)
        for _ in range(12):
            indices = method.select()[0]["indices"]
            sizes.append(len(indices))
            # main.py: DataLoader(..., drop_last = args.selection == "UniformNoReplacement")
            loader = torch.utils.data.DataLoader(
                list(indices), batch_size=batch, shuffle=True, drop_last=True
            )
            trained.append(sum(len(b) for b in loader))
            seen[indices] += 1
            passes.append(int(seen.max() - seen.min()))
        rounds.append(
            {
                "num_samples": num_samples,
                "fraction": fraction,
                "batch_size": batch,
                "round_sizes": sizes,
                "trained": trained,
                "coreset_size": method.coreset_size,
            }
        )
    counts = []
    for num_samples in (25, 15, 500, 50000):
        for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
            size = methods.UniformNoReplacement(
                list(range(num_samples)), types.SimpleNamespace(n_class=1), fraction
            ).coreset_size
            counts.append([num_samples, round(1 - fraction, 10), size])
    schedules = []
    for epochs, steps_per_epoch, lr, min_lr in ((10, 4, 0.1, 1e-4), (200, 39, 0.1, 1e-4), (5, 7, 0.05, 0.0)):
        args = types.SimpleNamespace(
            model="MLP",
            channel=1,
            num_classes=2,
            im_size=(2, 2),
            device="cpu",
            gpu=None,
            optimizer="SGD",
            lr=lr,
            momentum=0.9,
            weight_decay=5e-4,
            nesterov=True,
            scheduler="CosineAnnealingLR",
            epochs=epochs,
            min_lr=min_lr,
        )
        with contextlib.redirect_stdout(None):
            _, _, optimizer, scheduler, _ = utils.get_configuration(
                args, nets, "MLP", {}, range(steps_per_epoch), 0
            )
        lrs = []
        for _ in range(
            epochs * steps_per_epoch
        ):  # utils.train: optimizer.step() then scheduler.step() per batch
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        keep = sorted(
            set(range(2 * steps_per_epoch + 1)) | set(range(0, len(lrs), steps_per_epoch)) | {len(lrs) - 1}
        )
        schedules.append(
            {
                "epochs": epochs,
                "steps_per_epoch": steps_per_epoch,
                "lr": lr,
                "min_lr": min_lr,
                "steps": keep,
                "lrs": floats([lrs[s] for s in keep]),
            }
        )
    return {
        "function": "deepcore/methods/uniform_no_replacement.py: UniformNoReplacement.select (12 rounds, "
        "random_seed 0); coresetmethod.py: CoresetMethod.coreset_size; utils.py: get_configuration (the "
        "optimizer's lr before each step of utils.train's loop); the trained counts use main.py's drop_last loader",
        "rounds": rounds,
        "round_size_counts": counts,
        "schedules": schedules,
    }


def record_metriq(checkout: Path) -> dict:
    load_package(checkout, "official_drop")
    from official_drop.diversifiers.auto import Auto
    from official_drop.globals import DATA_PRUNING
    from official_drop.quoters.drop import DRoP
    from official_drop.schedulers.linear import Linear
    from official_drop.utils import get_idxs_from_scores

    labels = inputs.labels().numpy()

    class Data:  # what DRoP and get_idxs_from_scores read of the official data object
        num_classes = inputs.NUM_CLASSES
        full_length = inputs.NUM_SAMPLES
        selected_idxs = list(range(inputs.NUM_SAMPLES))

        def get_pool_dataset(self, augmented):
            return [(0, int(y)) for y in labels]

    def run(accuracy, kept_fraction, seeds=40):
        select_size = Linear(DATA_PRUNING, 1, 1.0, kept_fraction, inputs.NUM_SAMPLES)(0)
        metrics = [{0: {"overall": {"accuracy": 0.5}, "classwise": [{"recall": a} for a in accuracy]}}]
        try:
            quotas = DRoP("recall")(data=Data(), metrics=metrics, select_size=select_size)
            counts = []
            for seed in range(seeds):
                np.random.seed(seed)
                scores = np.random.uniform(
                    0, 1, size=inputs.NUM_SAMPLES
                ).tolist()  # scorers/random.py: Random
                with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
                    chosen = get_idxs_from_scores(
                        DATA_PRUNING,
                        Auto(),
                        quotas,
                        Data(),
                        scores,
                        select_size,
                        np.zeros((inputs.NUM_SAMPLES, 1)),
                    )
                counts.append(ints(np.bincount(labels[chosen], minlength=inputs.NUM_CLASSES)))
        except Exception as error:  # recorded: the official outcome
            return {"select_size": select_size, "raises": f"{type(error).__name__}: {error}"}
        return {
            "select_size": select_size,
            "quota_counts": [int(round(q * select_size)) for q in quotas],
            "class_counts": counts,
        }

    graded = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5]
    saturating = [0.2, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    perfect = [1.0, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5]
    skipping = [0.82, 0.0, 0.86, 0.03, 0.73, 0.18, 0.86, 0.54, 0.3, 0.42]  # class 8 saturates inside the loop
    cases = [
        {"params": {"class_wise_acc": graded, "pruning_rate": 0.7}, **run(graded, 0.3)},
        {"params": {"class_wise_acc": graded, "pruning_rate": 0.9}, **run(graded, 0.1)},
        {"params": {"class_wise_acc": saturating, "pruning_rate": 0.5}, **run(saturating, 0.5)},
        {"params": {"class_wise_acc": perfect, "pruning_rate": 0.7}, **run(perfect, 0.3, seeds=1)},
        {"params": {"class_wise_acc": skipping, "pruning_rate": 0.3}, **run(skipping, 0.7)},
    ]
    counts = [
        [n, round(1 - f, 10), Linear(DATA_PRUNING, 1, 1.0, f, n)(0)]
        for n in (500, 10000, 1997)
        for f in (0.1, 0.3, 0.5, 0.7, 0.9)
    ]
    return {
        "function": "quoters/drop.py: DRoP.__call__ (quoter_metric recall); utils.py: get_idxs_from_scores with "
        "diversifiers/auto.py: Auto and scorers/random.py's uniform scores (np.random.seed 0-39); "
        "schedulers/linear.py: Linear (strategy DATA_PRUNING, 1 iteration, start_frac 1) for the kept size",
        "cases": cases,
        "kept_counts": counts,
    }


def record_infobatch(checkout: Path) -> dict:
    with on_path(checkout):
        from infobatch import InfoBatch
    scores = inputs.losses(5)
    cases = []
    for pruning_rate, delta, epochs in ((0.5, 0.875, 10), (0.3, 0.5, 8), (0.7, 0.875, 6)):
        dataset = InfoBatch(list(range(inputs.NUM_SAMPLES)), epochs, pruning_rate, delta)
        dataset.scores = scores.clone()
        sampler = dataset.sampler
        per_epoch = []
        for _ in range(epochs):
            iter(sampler)  # what a DataLoader does once per epoch: IBSampler.__iter__ resets (prunes or not)
            indices = list(sampler.sample_indices)
            weights = dataset.weights[indices]
            per_epoch.append(
                {
                    "size": len(indices),
                    "upweighted": int((weights != 1).sum()),
                    "weight": float(weights.max()),
                }
            )
        well_learned = ints(np.where((scores < scores.mean()).numpy())[0])
        cases.append(
            {
                "params": {"pruning_rate": pruning_rate, "delta": delta, "num_epochs": epochs},
                "well_learned": well_learned,
                "epochs": per_epoch,
            }
        )
    return {
        "function": "infobatch/infobatch.py: InfoBatch (scores set to one epoch's losses) and its IBSampler, "
        "iterated once per epoch (prune / no_prune, reset_weights)",
        "scores": {"epoch": 5},
        "cases": cases,
    }


def record_rcap(checkout: Path) -> dict:
    load_package(checkout / "datacull", "official_rcap")
    from official_rcap.methods.RCAP import RCAPDataLoader, RCAPImportance

    labels = inputs.labels().numpy()
    base = torch.utils.data.TensorDataset(torch.zeros(inputs.NUM_SAMPLES, 1), torch.from_numpy(labels))
    base.targets = labels
    dataset = _Sized(base)
    logger = types.SimpleNamespace(trajectory_dir=tempfile.mkdtemp(), save_every_k_epoch=1)
    losses = inputs.losses(5).double().numpy()
    cases = []
    for beta, clip in ((0.25, None), (1.0, 1.0)):
        importance = RCAPImportance(dataset, logger, beta, clip)
        importance.sample_losses = losses.copy()  # the latest losses (compute_importance clips them)
        scores = importance.compute_importance()
        cases.append({"params": {"beta": beta, "clipping_threshold": clip}, "scores": floats(scores)})
    importance = RCAPImportance(dataset, logger, 0.25)
    importance.sample_losses = losses.copy()
    scores = importance.compute_importance()
    loader = RCAPDataLoader(dataset, 0.2)  # the original DataCull's rate: the fraction kept
    draws = 300
    frequency = np.zeros(inputs.NUM_SAMPLES)
    class_counts = None
    for seed in range(draws):
        np.random.seed(seed)
        loader.local_class_wise_indices = [np.where(labels == c)[0] for c in range(inputs.NUM_CLASSES)]
        chosen = np.asarray(loader.compute_subset(scores))
        frequency[chosen] += 1.0 / draws
        class_counts = ints(np.bincount(labels[chosen], minlength=inputs.NUM_CLASSES))
    return {
        "function": "datacull/methods/RCAP.py: RCAPImportance.compute_importance (sample_losses set to one epoch's "
        "losses) and RCAPDataLoader.compute_subset (kept fraction 0.2, first round, np.random.seed 0-299)",
        "cases": cases,
        "sampling": {
            "beta": 0.25,
            "kept_fraction": 0.2,
            "draws": draws,
            "class_counts": class_counts,
            "inclusion_frequency": floats(frequency),
        },
    }


class _Sized:
    """The original DataCull's DCDataset as its RCAP code reads it: ``len()`` and ``.dataset.targets``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)


RECORDERS = {
    "aum": record_aum,
    "ccs": record_ccs,
    "el2n": record_el2n,
    "forgetting": record_forgetting,
    "tdds": record_tdds,
    "rs2": record_rs2,
    "metriq": record_metriq,
    "infobatch": record_infobatch,
    "rcap": record_rcap,
}


def record(method: str, checkout: Path) -> Path:
    repository, marker = REPOSITORIES[method]
    checkout = checkout.expanduser().resolve()
    if not (checkout / marker).exists():
        raise SystemExit(f"{checkout} has no {marker}: give a checkout of {repository}")
    body = RECORDERS[method](checkout)
    result = {
        "method": method,
        "official": {
            "repository": repository,
            "commit": commit_of(checkout),
            "function": body.pop("function"),
        },
        "inputs": {
            "module": "tests/methods/parity/inputs.py",
            "seed": inputs.SEED,
            "num_samples": inputs.NUM_SAMPLES,
            "num_classes": inputs.NUM_CLASSES,
            "epochs": inputs.EPOCHS,
        },
        "environment": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "regenerate": f"python scripts/parity.py {method} --official <checkout of {repository}>",
        **body,
    }
    inputs.RECORDS.mkdir(parents=True, exist_ok=True)
    path = inputs.RECORDS / f"{method}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("method", choices=[*RECORDERS, "all"])
    parser.add_argument("--official", type=Path, help="the checkout of the method's official repository")
    parser.add_argument(
        "--official-root",
        type=Path,
        help="with `all`: a folder holding every checkout, named as its repository",
    )
    args = parser.parse_args()
    if args.method == "all":
        if args.official_root is None:
            parser.error("`all` needs --official-root")
        for method, (repository, _) in REPOSITORIES.items():
            print(record(method, args.official_root / repository.split("/")[1]))
    else:
        if args.official is None:
            parser.error("give --official <checkout>")
        print(record(args.method, args.official))


if __name__ == "__main__":
    main()
