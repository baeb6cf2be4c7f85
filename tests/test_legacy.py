"""Code written for DataCull 1.0.2 runs here and means the same, or says why not: the rate's meaning switch, 1.0.2
trajectories read back, metric-shape errors, and the official notebooks' call sequence on a tiny data set.

1.0.2 itself is not installed here: its trajectory files are written the way its DCLogger writes them (one
``{"index": value}`` JSON line per logged sample, appended), and its AUM and RCAP are the few numpy lines its
code runs, written out below as the reference.
"""

from __future__ import annotations

import json
import logging
import math
import warnings

import numpy as np
import pytest
import torch
from datacull.methods.CCS import AUMImportance, CCSDataLoader
from datacull.methods.MetriQ import MetriQDataLoader
from datacull.methods.RCAP import RCAPDataLoader, RCAPImportance
from datacull.methods.RS2 import RS2DataLoader
from datacull.methods.TDDS import TDDSDataLoader
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from datacull import DCDataLoader, DCDataset, DCLogger, legacy
from datacull.cli import app
from datacull.errors import InputError, TrajectoryError
from datacull.methods.topk import TopKDataLoader

N, CLASSES = 200, 4


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Each test is a new process as far as the once-per-process warning goes; the variable starts unset."""
    monkeypatch.setattr(legacy, "_warned", False)
    monkeypatch.delenv(legacy.RATE_VARIABLE, raising=False)


@pytest.fixture
def dataset():
    labels = torch.arange(N) % CLASSES
    return DCDataset(TensorDataset(torch.randn(N, 3), labels))


def original_loaders(dataset):
    """Each loader of 1.0.2's names, built as the notebooks build them, given ``rate``."""
    scores = np.linspace(0, 1, N)

    class MyLoader(DCDataLoader):  # a user's own subclass, as 1.0.2's README shows
        static = True

        def compute_subset(self, sample_importance):
            return np.arange(self.required_num_samples)

    return {
        "DCDataLoader subclass": (lambda rate: MyLoader(dataset, rate), None),
        "CCSDataLoader": (lambda rate: CCSDataLoader(dataset, rate, beta=0.0, num_strata=5, seed=0), scores),
        "TDDSDataLoader": (lambda rate: TDDSDataLoader(dataset, rate, seed=0), scores),
        "MetriQDataLoader": (
            lambda rate: MetriQDataLoader(dataset, rate, class_wise_acc=[0.5, 0.6, 0.7, 0.8], seed=0),
            None,
        ),
        "RS2DataLoader": (lambda rate: RS2DataLoader(dataset, rate, seed=0), None),
        "RCAPDataLoader": (lambda rate: RCAPDataLoader(dataset, rate, seed=0), np.full(N, 1.0 / N)),
    }


NOTEBOOK_RATE = 0.8  # every official notebook: pruning_rate = 0.8, loader(..., 1 - pruning_rate)


@pytest.mark.parametrize("name", list(original_loaders(None)))
@pytest.mark.parametrize(
    "meaning, kept",
    [(None, round(NOTEBOOK_RATE * N)), ("removed", round(NOTEBOOK_RATE * N)), ("kept", math.ceil(0.2 * N))],
)
def test_the_notebooks_rate_means_what_the_switch_says(dataset, monkeypatch, caplog, name, meaning, kept):
    if meaning is not None:
        monkeypatch.setenv(legacy.RATE_VARIABLE, meaning)
    build, scores = original_loaders(dataset)[name]
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger="datacull"):
        warnings.simplefilter("always")
        loader = build(1 - NOTEBOOK_RATE)
        indices = loader.resample(scores)
    assert len(indices) == loader.required_num_samples == kept
    told = [w for w in caught if issubclass(w.category, legacy.PruningRateMeaningWarning)]
    if meaning is None:  # one line that names 1.0.2's meaning and the switch
        (warning,) = told
        text = str(warning.message)
        assert "\n" not in text and "1.0.2 kept" in text and "DATACULL_PRUNING_RATE=kept" in text
    else:
        assert not told
    applied = "kept, DATACULL_PRUNING_RATE=kept" if meaning == "kept" else "removed"
    assert f"keeps {kept} of {N} samples (pruning_rate=0.2 read as the fraction {applied})" in caplog.text


def test_the_warning_comes_once_per_process(dataset):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            RS2DataLoader(dataset, 0.5, seed=0)
            RCAPDataLoader(dataset, 0.5, seed=0)
    assert sum(issubclass(w.category, legacy.PruningRateMeaningWarning) for w in caught) == 1


def test_new_names_have_one_meaning_and_say_nothing(dataset, monkeypatch):
    monkeypatch.setenv(legacy.RATE_VARIABLE, "kept")  # only the original's names read it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = TopKDataLoader(dataset, 0.8, seed=0)
    assert loader.required_num_samples == 40 and not caught


@pytest.mark.parametrize("value", ["keep", "KEPT", "0.8"])
def test_a_value_of_the_switch_that_is_no_meaning_is_a_one_line_error(dataset, monkeypatch, value):
    monkeypatch.setenv(legacy.RATE_VARIABLE, value)
    with pytest.raises(
        InputError, match=r"DATACULL_PRUNING_RATE=.* is not a meaning of pruning_rate: use kept"
    ):
        RS2DataLoader(dataset, 0.5)


def test_a_kept_fraction_of_zero_is_refused(dataset, monkeypatch):
    monkeypatch.setenv(legacy.RATE_VARIABLE, "kept")
    with pytest.raises(
        InputError, match=r"pruning_rate must be in \(0, 1\] under DATACULL_PRUNING_RATE=kept"
    ):
        RS2DataLoader(dataset, 0.0)


def test_the_runner_always_reads_the_fraction_removed(tmp_path, monkeypatch, caplog):
    from datacull.runner import train

    from .helpers import fast_config

    monkeypatch.setenv(legacy.RATE_VARIABLE, "kept")
    cfg = fast_config(tmp_path, "sampler=random", "importance=uniform", "sampler.pruning_rate=0.75")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger="datacull"):
        warnings.simplefilter("always")
        summary = train(cfg, tmp_path / "run")
    assert summary["realized_pruning_rate"] == pytest.approx(0.75)
    assert "DATACULL_PRUNING_RATE=kept is ignored by the runner" in caplog.text
    assert not [w for w in caught if issubclass(w.category, legacy.PruningRateMeaningWarning)]


# ------------------------------------------------------------------------------------- 1.0.2 trajectories
def write_jsonl(folder, epoch, index, values):
    """What 1.0.2's DCLogger.log_metric writes: one orjson line ``{"<index>": value}`` per sample, appended."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"epoch{epoch}.jsonl", "a") as stream:
        for i, value in zip(index.tolist(), values.tolist(), strict=True):
            stream.write(json.dumps({str(i): value}, separators=(",", ":")) + "\n")


def original_aum(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1.0.2's AUMImportance: probabilities, the true class's minus the largest other, averaged over epochs."""
    probs = torch.softmax(torch.tensor(logits, dtype=torch.float32), dim=2).numpy()
    rows = np.arange(labels.size)
    true = probs[:, rows, labels]
    others = probs.copy()
    others[:, rows, labels] = -np.inf
    return (true - others.max(axis=2)).mean(axis=0)


def test_aum_reads_a_trajectory_of_1_0_2_within_1e_6_of_its_aum(tmp_path, dataset):
    rng = np.random.default_rng(0)
    epochs = 5
    logits = rng.normal(size=(epochs, N, CLASSES)).astype(np.float32) * 3
    folder = tmp_path / "logits"
    for epoch in range(epochs):
        order = rng.permutation(N)  # logged in batch order, as training visits them
        write_jsonl(folder, epoch, order, logits[epoch][order])
    scores = AUMImportance(dataset, epochs, DCLogger(folder), probability_space=True).compute_importance()
    expected = original_aum(logits, dataset.targets)
    assert np.abs(np.asarray(scores) - expected).max() < 1e-6
    assert sorted(path.name for path in folder.glob("*.jsonl")) == [f"epoch{e}.jsonl" for e in range(epochs)]


def original_rcap(previous: np.ndarray, losses: list, labels: np.ndarray, beta: float) -> np.ndarray:
    """1.0.2's RCAPImportance.compute_importance for one epoch (None where a sample was not logged)."""
    losses = np.asarray(losses, dtype=object)
    logged = np.where(losses != None)[0]  # noqa: E711 (1.0.2's own test)
    previous[logged] = losses[logged].astype(float)
    previous[:] = np.clip(previous, 0, np.log(CLASSES))
    importance = np.zeros(N)
    for c in range(CLASSES):
        z = previous[labels == c] / beta
        z = np.exp(z - z.max())
        importance[labels == c] = z / z.sum()
    return importance


def test_rcap_reads_1_0_2_losses_of_partial_epochs_as_1_0_2_does(tmp_path, dataset):
    rng = np.random.default_rng(1)
    folder = tmp_path / "loss"
    labels = dataset.targets
    reference = np.full(N, np.log(CLASSES))
    importance = RCAPImportance(dataset, logger_object=DCLogger(folder), beta=0.25)
    first = np.asarray(importance.compute_importance())  # before any epoch: uniform within each class
    assert np.allclose(first, original_rcap(reference, [None] * N, labels, 0.25))
    for epoch in range(3):
        trained = np.sort(rng.choice(N, size=N // 2, replace=False))  # RCAP trains a subset each epoch
        losses = rng.exponential(1.0, size=trained.size).astype(
            np.float32
        )  # a float32 loss, as torch logs it
        write_jsonl(folder, epoch, trained, losses)
        logged = [None] * N
        for i, value in zip(trained, losses, strict=True):
            logged[i] = float(value)
        expected = original_rcap(reference, logged, labels, 0.25)
        reader = RCAPImportance(dataset, logger_object=DCLogger(folder), beta=0.25)
        reader.load_state_dict(importance.state_dict())
        importance = reader
        assert np.abs(np.asarray(importance.compute_importance()) - expected).max() < 1e-12


def test_a_1_0_2_folder_is_converted_once_and_its_files_stay(tmp_path, dataset):
    folder = tmp_path / "logits"
    write_jsonl(folder, 0, np.arange(N), np.ones((N, CLASSES)))
    logger = DCLogger(folder)
    assert logger.saved_epochs() == [0]
    converted = (folder / "epoch0.npy").stat().st_mtime_ns
    assert logger.saved_epochs() == [0] and (folder / "epoch0.npy").stat().st_mtime_ns == converted
    assert (folder / "epoch0.jsonl").exists()
    result = CliRunner().invoke(app, ["convert", str(folder)])
    assert result.exit_code == 0 and "converted 0 epoch(s) (all were converted before)" in result.output


def test_datacull_convert_converts_a_folder_ahead_of_time(tmp_path):
    folder = tmp_path / "loss"
    for epoch in range(3):
        write_jsonl(folder, epoch, np.arange(10), np.arange(10) / 10)
    result = CliRunner().invoke(app, ["convert", str(folder), "--num-samples", "12"])
    assert result.exit_code == 0, result.output
    assert "converted 3 epoch(s)" in result.output
    values = np.load(folder / "epoch2.npy")
    assert (
        values.shape == (12,) and np.allclose(values[:10], np.arange(10) / 10) and np.isnan(values[10:]).all()
    )
    assert np.load(folder / "epoch2.seen.npy").tolist() == [True] * 10 + [False] * 2


def test_an_epoch_in_both_formats_is_a_one_line_error(tmp_path, dataset):
    folder = tmp_path / "loss"
    native = DCLogger(folder, num_samples=N)
    native.log_metric(0, torch.arange(N), torch.ones(N))
    native.flush()
    write_jsonl(folder, 0, np.arange(N), np.ones(N))
    with pytest.raises(
        TrajectoryError, match=r"holds epoch 0 in both formats, epoch0.jsonl .* and epoch0.npy"
    ):
        DCLogger(folder).saved_epochs()


def test_a_folder_of_neither_format_is_a_one_line_error_naming_what_it_holds(tmp_path, dataset):
    folder = tmp_path / "logits"
    folder.mkdir()
    (folder / "epoch0.csv").write_text("1,2\n")
    with pytest.raises(
        FileNotFoundError, match=r"neither epochN.npy \(datacull\) nor epochN.jsonl .* but epoch0.csv"
    ):
        AUMImportance(dataset, None, DCLogger(folder)).compute_importance()


def test_1_0_2_files_written_beside_a_folder_without_its_slash_are_pointed_out(tmp_path, dataset):
    # 1.0.2 joined trajectory_dir and "epoch0.jsonl" without a separator: "trajectories/logits" + "epoch0.jsonl"
    (tmp_path / "logits").mkdir()
    write_jsonl(tmp_path, 0, np.arange(N), np.ones((N, CLASSES)))
    (tmp_path / "epoch0.jsonl").rename(tmp_path / "logitsepoch0.jsonl")
    with pytest.raises(FileNotFoundError, match=r"wrote logitsepoch0.jsonl beside it .* trailing '/'"):
        AUMImportance(dataset, None, DCLogger(tmp_path / "logits")).compute_importance()


# --------------------------------------------------------------------------------------- the wrong metric
def test_rcap_given_logits_stops_when_they_are_logged(tmp_path, dataset):
    logger = DCLogger(tmp_path / "loss")
    RCAPImportance(dataset, logger_object=logger, beta=0.25)
    with pytest.raises(TrajectoryError) as error:  # the official rcap notebook logs the model's output here
        logger.log_metric(0, torch.arange(8), torch.randn(8, CLASSES))
    message = str(error.value)
    assert "RCAPImportance reads the per-sample loss" in message and "(8, 4)" in message
    assert "reduction='none'" in message and "\n" not in message


def test_aum_given_losses_stops_when_they_are_logged(tmp_path, dataset):
    logger = DCLogger(tmp_path / "logits")
    AUMImportance(dataset, None, logger)
    with pytest.raises(
        TrajectoryError, match=r"AUMImportance reads the logits .* shape \(8,\): log the model's"
    ):
        logger.log_metric(0, torch.arange(8), torch.rand(8))


def test_a_trajectory_of_the_wrong_metric_already_on_disk_stops_when_read(tmp_path, dataset):
    folder = tmp_path / "loss"
    write_jsonl(folder, 0, np.arange(N), np.ones((N, CLASSES)))  # logits, in the folder RCAP reads as losses
    importance = RCAPImportance(dataset, logger_object=DCLogger(folder), beta=0.25)
    with pytest.raises(
        TrajectoryError, match=r"RCAPImportance reads the per-sample loss .* shape \(200, 4\)"
    ):
        importance.compute_importance()


# ------------------------------------------------------------------------ an official notebook's call sequence
@pytest.mark.parametrize("meaning, kept", [("kept", 0.2), ("removed", 0.8), (None, 0.8)])
def test_the_rcap_notebooks_lightning_sequence_runs_with_each_meaning(tmp_path, monkeypatch, meaning, kept):
    """Wrap the data set, log losses during a Lightning fit, compute the importance and resample inside
    ``train_dataloader`` (reloaded every epoch), with the rate the notebook computes (1 - 0.8)."""
    lightning = pytest.importorskip("lightning")
    from sklearn.datasets import load_digits

    if meaning is not None:
        monkeypatch.setenv(legacy.RATE_VARIABLE, meaning)
    digits = load_digits()
    data = DCDataset(
        TensorDataset(torch.tensor(digits.data[:400]).float() / 16, torch.tensor(digits.target[:400]))
    )
    logger = DCLogger(str(tmp_path / "loss") + "/")
    importance = RCAPImportance(data, logger_object=logger, beta=0.25)
    pruning_rate = 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", legacy.PruningRateMeaningWarning)
        loader = RCAPDataLoader(data, 1 - pruning_rate, batch_size=32, seed=0)
    sizes = []

    def resample():
        loader.resample(importance.compute_importance())
        sizes.append(len(loader.sampler))
        return loader

    notebook_fit(
        lightning, data, resample, lambda epoch, index, _, losses: logger.log_metric(epoch, index, losses), 3
    )
    expected = math.ceil(kept * 400) if meaning == "kept" else round(kept * 400)
    assert sizes == [expected] * 3


def notebook_fit(lightning, data, train_dataloader, on_step, epochs):
    """One Lightning fit as the notebooks write it: ``on_step(epoch, index, logits, losses)`` logs what the
    notebook logs; ``train_dataloader()`` is reloaded every epoch (where the notebooks resample)."""

    class Notebook(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(64, 10)

        def training_step(self, batch, batch_idx):
            x, y, index = batch
            logits = self.net(x)
            losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
            on_step(self.current_epoch, index, logits.detach(), losses.detach())
            return losses.mean()

        def train_dataloader(self):
            return train_dataloader()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Notebook()
    lightning.Trainer(
        max_epochs=epochs,
        reload_dataloaders_every_n_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model)
    return model


@pytest.mark.parametrize("notebook", ["ccs", "tdds", "metriq", "rs2"])
def test_the_static_and_random_notebooks_sequences_keep_1_0_2s_sizes_under_kept(
    tmp_path, monkeypatch, notebook
):
    """ccs/tdds/metriq.ipynb: a full-data fit logs logits, the importance (or class accuracies) is computed, the
    loader is built with 1 - pruning_rate and resampled in train_dataloader of a second fit; rs2.ipynb resamples
    a random subset every epoch. Under DATACULL_PRUNING_RATE=kept each trains ceil(0.2 N) samples, as in 1.0.2."""
    lightning = pytest.importorskip("lightning")
    from sklearn.datasets import load_digits

    monkeypatch.setenv(legacy.RATE_VARIABLE, "kept")
    monkeypatch.chdir(tmp_path)
    digits = load_digits()
    data = DCDataset(
        TensorDataset(torch.tensor(digits.data[:400]).float() / 16, torch.tensor(digits.target[:400]))
    )
    scores = None
    if notebook != "rs2":
        logits_logger = DCLogger("trajectories/logits/")
        full_loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
        scoring = notebook_fit(
            lightning,
            data,
            lambda: full_loader,
            lambda e, i, logits, _: logits_logger.log_metric(e, i, logits),
            3,
        )
        if notebook == "ccs":
            scores = AUMImportance(data, 3, logits_logger).compute_importance()
        elif notebook == "tdds":
            from datacull.methods.TDDS import TDDSImportance

            scores = TDDSImportance(data, 3, 2, 0.9, logits_logger).compute_importance()
        else:  # MetriQ's class accuracies of the scoring model
            with torch.no_grad():
                predicted = scoring.net(data.dataset.tensors[0]).argmax(1)
            labels = data.dataset.tensors[1]
            accuracy = [float((predicted[labels == c] == c).float().mean()) for c in range(10)]
    pruning_rate = 0.8
    loader = {
        "ccs": lambda: CCSDataLoader(data, 1 - pruning_rate, beta=0.1, num_strata=5, batch_size=32, seed=0),
        "tdds": lambda: TDDSDataLoader(data, 1 - pruning_rate, batch_size=32, seed=0),
        "metriq": lambda: MetriQDataLoader(
            data, 1 - pruning_rate, class_wise_acc=accuracy, batch_size=32, seed=0
        ),
        "rs2": lambda: RS2DataLoader(data, 1 - pruning_rate, batch_size=32, seed=0),
    }[notebook]()
    sizes = []

    def resample():
        loader.resample(scores)
        sizes.append(len(loader.sampler))
        return loader

    notebook_fit(lightning, data, resample, lambda *_: None, 2)
    assert sizes == [math.ceil(0.2 * 400)] * 2


def test_a_new_run_logging_into_a_1_0_2_folder_does_not_read_the_old_runs_epochs(tmp_path, dataset):
    folder = tmp_path / "loss"
    for epoch in range(3):
        write_jsonl(folder, epoch, np.arange(N), np.full(N, 9.0))  # an earlier 1.0.2 run
    logger = DCLogger(folder, num_samples=N)
    importance = RCAPImportance(dataset, logger_object=logger, beta=0.25)
    logger.log_metric(0, torch.arange(N), torch.full((N,), 0.1))  # this run's first epoch
    logger.flush()
    importance.compute_importance()
    assert importance.sample_losses.max() == pytest.approx(0.1)  # not the old run's 9.0
    assert (folder / "epoch1.jsonl").exists()  # the originals stay


def test_lines_of_different_widths_are_refused_even_when_the_total_fits(tmp_path):
    folder = tmp_path / "logits"
    folder.mkdir()
    (folder / "epoch0.jsonl").write_text(
        '{"0":[1.0,2.0]}\n{"1":5.0}\n{"2":[1.0,2.0,3.0]}\n'
    )  # 3 + 2 + 4 = 3 x 3
    with pytest.raises(TrajectoryError, match=r"line 2 holds another number of values than the first \(2\)"):
        legacy.parse_jsonl(folder / "epoch0.jsonl")
