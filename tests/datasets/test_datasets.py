"""Datasets: deterministic class-balanced subsets, validation split, the decoded-image cache."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datacull.datasets import balanced_subset
from datacull.datasets.common import hold_out_validation, resolve_val_fraction, validation_split
from datacull.errors import DataError
from datacull.parts import load_dataset

from ..helpers import write_image_folder


def test_balanced_subset_is_deterministic_and_balanced():
    labels = np.repeat(np.arange(4), [10, 3, 7, 20])
    chosen = balanced_subset(labels, 5, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [5, 3, 5, 5]
    assert np.array_equal(chosen, balanced_subset(labels, 5, seed=0))
    assert not np.array_equal(chosen, balanced_subset(labels, 5, seed=1))


def test_validation_split_is_stratified_and_disjoint():
    labels = np.repeat(np.arange(3), [10, 20, 1])
    train, val = validation_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 4, 0]
    assert set(train).isdisjoint(val) and len(train) + len(val) == 31


def test_a_validation_split_is_held_out_of_a_copy_never_of_the_training_set():
    cfg = OmegaConf.create({"name": "digits", "val_fraction": "auto", "split_seed": 0})
    whole = load_dataset(cfg, "unused")
    assert whole.train_x.dtype == torch.uint8 and whole.train_x.shape[1:] == (1, 8, 8)
    assert whole.val_y is None and whole.train_y.numel() + whole.test_y.numel() == 1797
    query = hold_out_validation(whole, 0.1, seed=0)
    assert query.train_y.numel() + query.val_y.numel() == whole.train_y.numel()
    assert (
        np.bincount(query.val_y.numpy()).tolist()
        == np.floor(0.1 * np.bincount(whole.train_y.numpy()) + 0.5).tolist()
    )
    assert whole.val_y is None and query.num_classes == 10


@pytest.mark.parametrize(
    "setting, needed, expected",
    [("auto", False, 0.0), ("auto", True, 0.1), (None, True, 0.1), (0.2, False, 0.2)],
)
def test_val_fraction_auto_holds_out_a_split_only_when_something_reads_it(setting, needed, expected):
    assert resolve_val_fraction(setting, needed) == expected


def test_a_val_fraction_that_is_not_a_number_is_a_one_line_error():
    with pytest.raises(DataError, match="dataset.val_fraction must be auto or a number"):
        resolve_val_fraction("half", needed=False)


def test_image_folder_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path):
    root = write_image_folder(tmp_path / "images")
    cfg = OmegaConf.create({"name": "imagefolder", "root": str(root), "val_fraction": 0.0})
    first = load_dataset(cfg, tmp_path / "cache")
    entries = list((tmp_path / "cache" / "datasets").iterdir())
    assert len(entries) == 1 and first.train_x.shape == (8, 3, 8, 8) and first.classes == ["a", "b"]
    again = load_dataset(cfg, tmp_path / "cache")
    assert (
        torch.equal(again.train_x, first.train_x)
        and len(list((tmp_path / "cache" / "datasets").iterdir())) == 1
    )
    changed = root / "train" / "a" / "0.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(changed)
    os.utime(changed, (time.time() + 5, time.time() + 5))
    updated = load_dataset(cfg, tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "datasets").iterdir())) == 2
    assert updated.train_x[0].sum() == 0 and first.train_x[0].sum() > 0


def test_image_folder_resizes_when_asked(tmp_path):
    root = write_image_folder(tmp_path / "images")
    cfg = OmegaConf.create({"name": "imagefolder", "root": str(root), "image_size": [4, 6], "channels": 1})
    data = load_dataset(cfg, tmp_path / "cache")
    assert data.train_x.shape[1:] == (1, 4, 6)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_without_archive_and_without_download_says_what_to_do(tmp_path, name):
    from datacull.errors import DataError

    cfg = OmegaConf.create({"name": name, "root": str(tmp_path), "download": False})
    with pytest.raises(DataError, match="Put the python archive there"):
        load_dataset(cfg, tmp_path / "cache")
