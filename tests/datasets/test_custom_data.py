"""Your data in ``datacull train``: a ``Dataset`` of your own by ``_target_`` (token sequences with a collate function
and dict inputs, a table), torchvision's data sets by name and Hugging Face's, streamed through DataLoader workers
into the same training loop as the resident images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from datacull.datasets.custom import build_transform
from datacull.datasets.stream import InputsOf, StreamedSamples, epoch_seed, stream_batches
from datacull.errors import DataError, InputError
from datacull.parts import build_parts, load_dataset
from datacull.runner import train
from datacull.scoring_run import data_fingerprint

from ..custom_data import BreastCancer, GaussianNoise, TokenSequences
from ..helpers import compose_config, metrics_without_timing, save_token_dataset, shorten, write_mnist

TEXT = [
    "dataset=custom",
    "dataset._target_=tests.custom_data.TokenSequences",
    "dataset.collate_fn=tests.custom_data.pad_tokens",
    "dataset.workers=0",
    "model=custom",
    "model._target_=tests.custom_models.BagOfTokens",
    "+model.vocab_size=60",
    "optimizer.lr=0.5",
    "trainer.epochs=4",
    "trainer.batch_size=16",
]
TABLE_DATA = ["dataset=custom", "dataset._target_=tests.custom_data.BreastCancer", "dataset.workers=0"]
TABLE = [*TABLE_DATA, "model=custom", "model._target_=tests.custom_models.TabularNet"]
CPU = torch.device("cpu")


def config(tmp_path, *overrides):
    given = frozenset(override.split("=", 1)[0] for override in overrides)
    return shorten(compose_config(list(overrides), tmp_path), given)


# ------------------------------------------------------------------------------------- training, end to end
def test_a_text_classifier_trains_with_aum_and_ccs_from_its_scoring_run(tmp_path):
    summary = train(config(tmp_path, *TEXT, "importance=aum", "sampler=ccs"), tmp_path / "run")
    assert summary["status"] == "completed" and summary["dataset"] == "custom"
    assert len(summary["per_class_acc"]) == 3  # the classes came from the data set
    assert summary["scoring_cost_samples"] == 3 * 96  # three scoring epochs over every sequence
    assert summary["samples_trained"] == 4 * 48  # CCS kept half of them
    assert summary["test_acc"] >= 0.5  # three classes: chance is 1/3
    assert len(pd.read_csv(tmp_path / "run" / "samples.csv")) == 96


def test_a_text_classifier_trains_with_infobatch(tmp_path):
    summary = train(config(tmp_path, *TEXT, "sampler=infobatch"), tmp_path / "run")
    assert summary["status"] == "completed"
    assert 0 < summary["realized_pruning_rate"] < 0.5
    assert summary["samples_trained"] < 4 * 96


def test_a_transform_of_yours_augments_training_inputs_per_sample(tmp_path):
    overrides = [*TABLE, "importance=uniform", "sampler=random", "trainer.epochs=2", "trainer.batch_size=64"]
    plain = train(config(tmp_path / "plain", *overrides), tmp_path / "plain" / "run")
    noisy = config(
        tmp_path / "noisy",
        *overrides,
        "dataset.augment._target_=tests.custom_data.GaussianNoise",
        "+dataset.augment.std=0.5",
    )
    augmented = train(noisy, tmp_path / "noisy" / "run")
    assert augmented["status"] == plain["status"] == "completed"
    assert (
        metrics_without_timing(tmp_path / "noisy" / "run").train_loss.tolist()
        != metrics_without_timing(tmp_path / "plain" / "run").train_loss.tolist()
    )


# -------------------------------------------------------------------------------- a data set of your own
def test_labels_come_from_targets_or_are_read_once_from_the_items(tmp_path):
    kept = load_dataset(config(tmp_path, *TABLE).dataset, tmp_path)
    read = load_dataset(config(tmp_path, *TABLE, "+dataset.targets=false").dataset, tmp_path)
    assert torch.equal(kept.train_y, read.train_y) and torch.equal(kept.test_y, read.test_y)
    assert kept.classes == ["malignant", "benign"] and not kept.images
    assert kept.input_shape == (30,) and kept.in_channels is None and kept.image_size is None
    assert isinstance(kept.train_x, StreamedSamples) and kept.train_x.shape == (456, 30)


def test_a_test_split_by_a_target_of_its_own(tmp_path):
    overrides = [
        "dataset=custom",
        "dataset._target_=tests.custom_data.TrainOnly",
        "dataset.test._target_=tests.custom_data.TrainOnly",
        "+dataset.test.size=4",
    ]
    data = load_dataset(config(tmp_path, *overrides).dataset, tmp_path)
    assert len(data.train_y) == 8 and len(data.test_y) == 4 and data.classes == ["0", "1"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset=custom"], r"dataset=custom needs dataset._target_=<package.module.Class>"),
        (
            ["dataset=custom", "dataset._target_=tests.custom_data.Pairs"],
            r"gives items of type Tensor; datacull reads \(input, label\) pairs",
        ),
        (
            ["dataset=custom", "dataset._target_=tests.custom_data.TrainOnly"],
            r"takes no train= argument: give its test split as dataset.test._target_",
        ),
        (
            ["dataset=custom", "dataset._target_=tests.nowhere.Set"],
            r"dataset._target_=tests.nowhere.Set: cannot",
        ),
        (
            [*TABLE_DATA, "model=mlp"],
            r"model=mlp takes images \(C, H, W\); the data set's inputs are of shape \(30,\)",
        ),
        (
            [*TABLE, "+dataset.augment.std=0.1"],
            r"dataset.augment for inputs other than images is a transform",
        ),
        (
            ["+dataset.augment._target_=tests.custom_data.GaussianNoise"],
            r"images take dataset.augment.crop_padding",
        ),
    ],
)
def test_data_that_cannot_be_used_is_a_one_line_error_before_training(tmp_path, overrides, message):
    with pytest.raises((DataError, InputError), match=message):
        cfg = config(tmp_path, *overrides)
        build_parts(cfg, tmp_path).recipe.build_model(load_dataset(cfg.dataset, tmp_path))


def test_sequences_of_different_lengths_without_a_collate_function_say_how_to_fix_it(tmp_path):
    data = load_dataset(config(tmp_path, *TEXT, "dataset.collate_fn=null").dataset, tmp_path)
    with pytest.raises(DataError, match=r"differ in shape .*dataset.collate_fn"):
        data.train_x.fetch(range(8))
    data.train_x.workers = 2  # raised in a worker process: still one line
    with pytest.raises(DataError) as raised:
        list(stream_batches(data.train_x, [torch.arange(8)], CPU))
    assert "\n" not in str(raised.value) and "dataset.collate_fn" in str(raised.value)


def test_a_collate_function_gives_inputs_and_labels():
    inputs, labels = torch.zeros(2, 3), torch.tensor([0, 1])
    assert InputsOf(lambda items: (inputs, labels))([None, None]) is inputs
    with pytest.raises(DataError, match=r"returned a dict; datacull reads \(inputs, labels\) from it"):
        InputsOf(lambda items: {"input_ids": inputs, "labels": labels})([None, None])


def test_the_scoring_cache_tells_data_sets_apart_by_target_and_arguments(tmp_path):
    fingerprint = {
        size: data_fingerprint(
            load_dataset(config(tmp_path, *TEXT, f"+dataset.size={size}").dataset, tmp_path)
        )
        for size in (96, 96, 48)
    }
    again = data_fingerprint(load_dataset(config(tmp_path, *TEXT, "+dataset.size=96").dataset, tmp_path))
    assert fingerprint[96] == again and fingerprint[48] != fingerprint[96]


def test_each_sample_gets_its_own_seeded_transform_whatever_the_batching_and_workers():
    samples = StreamedSamples(BreastCancer(train=True), "table", workers=0)
    transform = build_transform({"_target_": "tests.custom_data.GaussianNoise", "std": 1.0})
    assert isinstance(transform, GaussianNoise) and transform.std == 1.0

    def read(batches, seed, workers):
        samples.workers = workers
        out = torch.cat(list(stream_batches(samples, batches, CPU, transform, seed)))
        return out[torch.cat(batches).argsort()]

    seed = epoch_seed(0, 3)
    one = read([torch.arange(0, 10), torch.arange(10, 20)], seed, workers=0)
    other = read(
        [
            torch.tensor([19, 3, 7]),
            torch.tensor([0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]),
        ],
        seed,
        2,
    )
    torch.testing.assert_close(one, other, rtol=0, atol=0)
    assert not torch.equal(one, read([torch.arange(20)], epoch_seed(0, 4), workers=0))  # another epoch
    assert not torch.equal(one, samples.fetch(range(20)))  # fetch reads untransformed


# ------------------------------------------------------------------------------------ torchvision by name
MNIST = ["dataset=torchvision", "dataset.name=MNIST", "dataset.workers=0"]


def test_a_torchvision_data_set_by_name_loads_as_uint8_images(tmp_path):
    write_mnist(tmp_path / "data")
    data = load_dataset(config(tmp_path, *MNIST, f"dataset.root={tmp_path / 'data'}").dataset, tmp_path)
    assert data.images and data.train_x.dtype == torch.uint8 and tuple(data.train_x.shape) == (40, 1, 28, 28)
    assert data.classes[0] == "0 - zero" and data.train_y.tolist() == [i % 10 for i in range(40)]


def test_a_torchvision_data_set_streamed_trains_as_the_same_in_memory(tmp_path):
    write_mnist(tmp_path / "data")
    overrides = [
        *MNIST,
        f"dataset.root={tmp_path / 'data'}",
        "model=cnn",
        "model.width=4",
        "trainer.epochs=1",
        "trainer.batch_size=8",
        "dataset.augment.crop_padding=2",
        "importance=uniform",
        "sampler=random",
    ]
    for mode in ("true", "false"):
        assert train(
            config(tmp_path / mode, *overrides, f"dataset.in_memory={mode}"), tmp_path / mode / "run"
        )
    pd.testing.assert_frame_equal(
        metrics_without_timing(tmp_path / "true" / "run"), metrics_without_timing(tmp_path / "false" / "run")
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["dataset.name=MNIST"],
            r"torchvision's MNIST \(train\) cannot be loaded .*; add dataset.download=true",
        ),
        ([], r"dataset=torchvision needs dataset.name=<a class of torchvision.datasets"),
        (["dataset.name=VisionDataset"], r"takes neither train= nor split=: bring it as dataset=custom"),
    ],
)
def test_a_torchvision_data_set_that_is_not_there_is_one_line_naming_the_download_flag(
    tmp_path, overrides, message
):
    cfg = config(tmp_path, "dataset=torchvision", f"dataset.root={tmp_path / 'empty'}", *overrides)
    with pytest.raises(DataError, match=message) as raised:
        load_dataset(cfg.dataset, tmp_path)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "empty").exists() or not any(
        (tmp_path / "empty").rglob("*.gz")
    )  # nothing downloaded


# ------------------------------------------------------------------------------------------ Hugging Face
def test_a_hugging_face_data_set_from_disk_trains_its_columns_as_keyword_arguments(tmp_path):
    save_token_dataset(tmp_path / "tokens")
    overrides = [
        "dataset=hf",
        f"dataset.path={tmp_path / 'tokens'}",
        "dataset.input_column=[input_ids,attention_mask]",
        "dataset.workers=0",
        *[o for o in TEXT if o.startswith(("model", "+model", "optimizer", "trainer"))],
        "importance=el2n",
        "sampler=ccs",
    ]
    cfg = config(tmp_path, *overrides)
    data = load_dataset(cfg.dataset, tmp_path)
    assert data.classes == TokenSequences.classes and data.input_shape is None  # dict inputs
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["test_acc"] >= 0.5


def test_a_hugging_face_image_column_loads_as_uint8_images(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)) for _ in range(6)]
    table = datasets.Dataset.from_dict({"img": pictures, "label": [0, 1] * 3})
    datasets.DatasetDict(train=table, test=table).save_to_disk(str(tmp_path / "pictures"))
    base = ["dataset=hf", f"dataset.path={tmp_path / 'pictures'}", "dataset.workers=0"]
    data = load_dataset(config(tmp_path, *base, "dataset.input_column=img").dataset, tmp_path)
    assert data.images and tuple(data.train_x.shape) == (6, 3, 6, 5) and data.train_x.dtype == torch.uint8
    with pytest.raises(DataError, match=r"has no column picture; its columns: img, label"):
        load_dataset(config(tmp_path, *base, "dataset.input_column=picture").dataset, tmp_path)


def test_a_hugging_face_hub_name_does_not_download_unless_asked(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = config(tmp_path, "dataset=hf", "dataset.path=no-such-user/no-such-set", "dataset.input_column=text")
    with pytest.raises(
        DataError,
        match=r"neither a save_to_disk folder nor .* in the local cache .*; add dataset.download=true",
    ):
        load_dataset(cfg.dataset, tmp_path)
