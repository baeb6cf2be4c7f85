"""Data that does not fit in memory: an image folder streamed from disk trains exactly as the in-memory one."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from datacull.datasets.common import hold_out_validation
from datacull.datasets.stream import StreamedSamples, stream_batches
from datacull.errors import DataError
from datacull.parts import load_dataset
from datacull.runner import train

from ..helpers import compose_config, write_image_folder

SMALL = [
    "model=cnn",
    "model.width=4",
    "trainer.epochs=2",
    "trainer.batch_size=4",
    "dataset.augment.crop_padding=1",
]


def folder_config(root, tmp_path, *overrides):
    return compose_config(["dataset=imagefolder", f"dataset.root={root}", *SMALL, *overrides], tmp_path)


@pytest.mark.parametrize(
    "importance, sampler", [("uniform", "random"), ("aum", "ccs"), ("uniform", "metriq")]
)
def test_a_streamed_folder_trains_exactly_as_the_same_folder_in_memory(tmp_path, importance, sampler):
    root = write_image_folder(tmp_path / "images")
    runs = {}
    for mode in ("true", "false"):
        cfg = folder_config(
            root,
            tmp_path / mode,
            f"dataset.in_memory={mode}",
            f"importance={importance}",
            f"sampler={sampler}",
        )
        runs[mode] = train(cfg, tmp_path / mode / "run")
        assert runs[mode]["status"] == "completed"
    timing = ["train_time_s", "eval_time_s", "epoch_time_s"]
    memory, streamed = (
        pd.read_csv(tmp_path / mode / "run" / "metrics.csv").drop(columns=timing)
        for mode in ("true", "false")
    )
    pd.testing.assert_frame_equal(memory, streamed)
    assert runs["true"]["per_class_acc"] == runs["false"]["per_class_acc"]


def test_auto_streams_past_the_memory_limit_and_says_so(tmp_path, caplog):
    root = write_image_folder(tmp_path / "images")
    cfg = folder_config(root, tmp_path, "dataset.memory_limit_gb=1e-9")
    with caplog.at_level("INFO", logger="datacull"):
        data = load_dataset(cfg.dataset, tmp_path / "cache")
    assert isinstance(data.train_x, StreamedSamples) and data.train_x.shape == (8, 3, 8, 8)
    assert "streamed from disk (0.0 GB decoded > dataset.memory_limit_gb=1e-09)" in caplog.text
    assert not (tmp_path / "cache" / "datasets").exists()  # nothing decoded into the cache
    in_memory = load_dataset(
        folder_config(root, tmp_path, "dataset.in_memory=true").dataset, tmp_path / "cache"
    )
    assert torch.equal(data.train_x.fetch(range(8)), in_memory.train_x)


def test_streamed_files_subset_like_tensors_and_batches_arrive_in_order(tmp_path):
    root = write_image_folder(tmp_path / "images")
    data = load_dataset(folder_config(root, tmp_path, "dataset.in_memory=false").dataset, tmp_path / "cache")
    subset = data.train_x[[5, 1]]
    assert subset.shape == (2, 3, 8, 8) and subset.signature != data.train_x.signature
    assert torch.equal(subset.fetch([0, 1]), data.train_x.fetch([5, 1]))
    query = hold_out_validation(data, 0.25, seed=0)
    assert isinstance(query.val_x, StreamedSamples) and len(query.val_x) + len(query.train_x) == 8
    batches = [torch.tensor([3, 0]), torch.tensor([7]), torch.tensor([1, 2, 4])]
    data.train_x.workers = 2
    got = list(stream_batches(data.train_x, batches, torch.device("cpu")))
    for images, index in zip(got, batches, strict=True):
        assert torch.equal(images, data.train_x.fetch(index.tolist()))


def test_an_unknown_in_memory_setting_is_one_line(tmp_path):
    root = write_image_folder(tmp_path / "images")
    with pytest.raises(DataError, match="dataset.in_memory must be auto, true or false"):
        load_dataset(folder_config(root, tmp_path, "dataset.in_memory=maybe").dataset, tmp_path / "cache")
