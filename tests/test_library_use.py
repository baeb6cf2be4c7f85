"""The library inside a plain PyTorch loop, written as the README and the original package's README show."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from datacull import DCDataset, DCLogger


def digits_dataset() -> DCDataset:
    bunch = load_digits()
    return DCDataset(
        TensorDataset(torch.tensor(bunch.data, dtype=torch.float32) / 16, torch.tensor(bunch.target))
    )


def train_epoch(model, optimizer, loader, epoch, logger, metric):
    seen = []
    for x, y, index in loader:
        logits = model(x)
        losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        optimizer.zero_grad()
        losses.mean().backward()
        optimizer.step()
        logger.log_metric(epoch, index, (losses if metric == "loss" else logits).detach())
        seen.append(index)
    return torch.cat(seen)


def test_dynamic_rcap_in_a_plain_loop(tmp_path):
    from datacull.methods.RCAP import RCAPDataLoader, RCAPImportance

    torch.manual_seed(0)
    dataset = digits_dataset()
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    logger = DCLogger(tmp_path / "loss", save_every_k_epoch=1)
    importance = RCAPImportance(dataset=dataset, logger_object=logger, beta=0.25, clipping_threshold=None)
    loader = RCAPDataLoader(dataset=dataset, pruning_rate=0.7, batch_size=64, num_workers=0, seed=0)
    subsets = []
    for epoch in range(4):
        loader.resample(importance.compute_importance())
        trained = train_epoch(model, optimizer, loader, epoch, logger, "loss")
        assert torch.equal(trained.sort().values, loader.subset_indices.sort().values)
        subsets.append(set(loader.subset_indices.tolist()))
    assert all(len(subset) == round(0.3 * 1797) for subset in subsets)
    assert subsets[1] != subsets[2]  # dynamic: a new subset every epoch
    assert len(loader) == -(-round(0.3 * 1797) // 64)


def test_static_tdds_scores_then_ccs_on_the_subset(tmp_path):
    from datacull.methods.CCS import CCSDataLoader
    from datacull.methods.TDDS import TDDSImportance

    torch.manual_seed(0)
    dataset = digits_dataset()
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    logger = DCLogger(str(tmp_path) + "/", save_every_k_epoch=1)  # the original wanted a trailing slash
    full = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True)
    for epoch in range(6):
        train_epoch(model, optimizer, full, epoch, logger, "logits")
    scores = TDDSImportance(
        dataset=dataset, trajectory_length=6, window_size=3, decay=0.9, logger_object=logger
    ).compute_importance()
    loader = CCSDataLoader(
        dataset=dataset, pruning_rate=0.5, beta=0.1, num_strata=50, batch_size=128, num_workers=0
    )
    kept = loader.resample(scores)
    hardest_tenth = np.argsort(-scores)[: int(0.1 * 1797)]
    assert kept.numel() == 899 and not set(hardest_tenth.tolist()) & set(
        kept.tolist()
    )  # 898.5 rounds half up
    assert torch.equal(loader.resample(scores), kept)  # static: chosen once


def test_original_import_paths_and_keyword_signatures(tmp_path):
    from datacull.methods.CCS import AUMImportance, CCSDataLoader
    from datacull.methods.MetriQ import MetriQDataLoader
    from datacull.methods.RCAP import RCAPDataLoader, RCAPImportance
    from datacull.methods.RS2 import RS2DataLoader
    from datacull.methods.TDDS import TDDSDataLoader, TDDSImportance

    dataset = digits_dataset()
    logger = DCLogger(tmp_path)
    AUMImportance(dataset=dataset, trajectory_length=3, logger_object=logger)
    TDDSImportance(dataset=dataset, trajectory_length=3, window_size=2, decay=0.9, logger_object=logger)
    RCAPImportance(dataset=dataset, logger_object=logger, beta=2.0, clipping_threshold=None)
    loaders = [
        CCSDataLoader(
            dataset=dataset,
            pruning_rate=0.3,
            beta=0.1,
            num_strata=50,
            descending=False,
            batch_size=128,
            num_workers=1,
        ),
        TDDSDataLoader(dataset=dataset, pruning_rate=0.3, batch_size=128, num_workers=1),
        MetriQDataLoader(
            dataset=dataset, pruning_rate=0.3, class_wise_acc=np.full(10, 0.9), batch_size=64, num_workers=1
        ),
        RS2DataLoader(
            dataset=dataset,
            pruning_rate=0.3,
            sampling_with_replacement=False,
            stratify=False,
            batch_size=64,
            num_workers=1,
        ),
        RCAPDataLoader(dataset=dataset, pruning_rate=0.3, batch_size=64, num_workers=1),
    ]
    scores = np.random.default_rng(0).random(1797)
    for loader in loaders:
        assert loader.resample(scores).numel() == loader.required_num_samples == round(0.7 * 1797)
    x, y, index = next(iter(loaders[-1]))  # a worker process draws the batch
    assert x.shape == (64, 64) and index.shape == (64,)
