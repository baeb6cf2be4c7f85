"""DataCullCallback with a real Lightning Trainer on CPU: dynamic, static and reweighting samplers, resumption."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datacull import DCLogger
from datacull.errors import InputError

L = pytest.importorskip("lightning")

from datacull.lightning import DataCullCallback, loss_weights  # noqa: E402

from .lightning_parts import N, Recorder, digits_dataset, rcap_setup, trainer  # noqa: E402


def test_dynamic_rcap_resamples_every_epoch_and_logs_what_was_trained(tmp_path):
    torch.manual_seed(0)
    loader, importance, logger = rcap_setup(tmp_path / "loss")
    module = Recorder(loader)
    trainer(DataCullCallback(loader, importance)).fit(module)

    kept = round(0.3 * N)
    subsets = []
    for epoch in range(3):
        order = module.order(epoch)
        assert order.numel() == kept and order.unique().numel() == kept  # the subset, each sample once
        values, seen = logger.load_epoch(epoch, N)
        trained = np.zeros(N, dtype=bool)
        trained[order.numpy()] = True
        assert np.array_equal(seen, trained)
        assert np.isfinite(values[seen]).all() and np.isnan(values[~seen]).all()
        subsets.append(set(order.tolist()))
    assert subsets[0] != subsets[1] != subsets[2]  # dynamic: a new subset every epoch
    # the importance closed the loop: the resample before epoch 2 read the losses logged in epochs 0 and 1
    assert importance.last_epoch_read == 1
    values, seen = logger.load_epoch(1, N)
    latest = importance.sample_losses.numpy()
    assert np.allclose(latest[seen], np.clip(values[seen], 0, importance.clipping_threshold), atol=1e-6)


def test_static_scores_from_a_lightning_scoring_run_choose_once_and_reshuffle(tmp_path):
    from datacull.methods.CCS import AUMImportance, CCSDataLoader

    torch.manual_seed(0)
    dataset = digits_dataset()
    logits_logger = DCLogger(tmp_path / "logits", num_samples=N)
    full = DataLoader(dataset, batch_size=128, shuffle=True)
    scoring = Recorder(full, per_sample=("logits",))
    trainer(DataCullCallback(None, loggers={"logits": logits_logger}), epochs=2).fit(scoring)
    assert logits_logger.saved_epochs() == [0, 1]
    assert all(logits_logger.load_epoch(epoch, N)[1].all() for epoch in (0, 1))  # the full data, logged

    aum = AUMImportance(dataset, trajectory_length=2, logger_object=logits_logger)
    loader = CCSDataLoader(dataset, pruning_rate=0.5, beta=0.1, num_strata=50, batch_size=128, seed=0)
    module = Recorder(loader)
    trainer(DataCullCallback(loader, aum)).fit(module)

    orders = [module.order(epoch) for epoch in range(3)]
    assert all(torch.equal(order.sort().values, loader.subset_indices.sort().values) for order in orders)
    assert orders[0].numel() == loader.required_num_samples and loader.num_resamples == 1  # chosen once
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[1], orders[2])  # reshuffled
    hardest = np.argsort(aum.sample_importance)[: int(0.1 * N)]  # AUM: low margin = hard; CCS drops them
    assert not set(hardest.tolist()) & set(loader.subset_indices.tolist())
    assert logits_logger.saved_epochs() == [0, 1]  # training did not write into the scoring trajectory


def test_infobatch_weights_reach_the_loss_and_epochs_follow_the_subset_size(tmp_path):
    from datacull.methods.infobatch import InfoBatchDataLoader
    from datacull.methods.loss import LossImportance

    torch.manual_seed(0)
    dataset = digits_dataset()
    importance = LossImportance(dataset, logger_object=DCLogger(tmp_path / "loss", num_samples=N))
    loader = InfoBatchDataLoader(dataset, pruning_rate=0.5, num_epochs=4, delta=0.75, batch_size=128, seed=0)
    module = Recorder(loader)
    callback = DataCullCallback(loader, importance)
    trainer(callback, epochs=4, reload_dataloaders_every_n_epochs=1).fit(module)

    sizes = [module.order(epoch).numel() for epoch in range(4)]
    assert sizes == [module.subset_sizes[epoch] for epoch in range(4)]  # every epoch walked its whole subset
    assert sizes[0] == sizes[3] == N and sizes[1] < N and sizes[2] < N  # equal scores, pruning, annealing
    weights = torch.cat(module.weights[1])
    assert set(weights.unique().tolist()) == {1.0, 2.0}  # kept well-learned samples count 1 / (1 - 0.5)
    assert torch.cat(module.weights[3]).eq(1.0).all()  # annealing: all data, unweighted


def test_a_sampler_without_scores_resamples_every_k_epochs(tmp_path):
    from datacull.methods.RS2 import RS2DataLoader

    loader = RS2DataLoader(digits_dataset(), pruning_rate=0.5, batch_size=128, seed=0)
    module = Recorder(loader, per_sample=())
    trainer(DataCullCallback(loader, resample_every=2)).fit(module)
    subsets = [set(module.order(epoch).tolist()) for epoch in range(3)]
    assert subsets[0] == subsets[1] and not torch.equal(module.order(0), module.order(1))  # reshuffled only
    assert subsets[1] | subsets[2] == set(range(N))  # RS2 walks a permutation: every sample before repeats
    assert loader.num_resamples == 2


def test_a_changing_subset_size_without_reload_is_refused_not_cut_short(tmp_path):
    from datacull.methods.infobatch import InfoBatchDataLoader
    from datacull.methods.loss import LossImportance

    dataset = digits_dataset()
    importance = LossImportance(dataset, logger_object=DCLogger(tmp_path / "loss", num_samples=N))
    loader = InfoBatchDataLoader(dataset, pruning_rate=0.5, num_epochs=3, batch_size=128, seed=0)
    with pytest.raises(InputError, match="reload_dataloaders_every_n_epochs=1"):
        trainer(DataCullCallback(loader, importance)).fit(Recorder(loader))


def test_resuming_from_a_lightning_checkpoint_trains_on_the_same_subsets(tmp_path):
    torch.manual_seed(0)
    loader, importance, _ = rcap_setup(tmp_path / "straight")
    straight = Recorder(loader)
    trainer(DataCullCallback(loader, importance)).fit(straight)

    torch.manual_seed(0)
    loader, importance, _ = rcap_setup(tmp_path / "interrupted")
    first = trainer(DataCullCallback(loader, importance), epochs=2)
    first.fit(Recorder(loader))
    first.save_checkpoint(tmp_path / "last.ckpt")
    torch.load(tmp_path / "last.ckpt", weights_only=True)  # the callback's state is plain tensors

    loader, importance, _ = rcap_setup(tmp_path / "interrupted")  # fresh objects, as in a new process
    resumed = Recorder(loader)
    trainer(DataCullCallback(loader, importance)).fit(resumed, ckpt_path=tmp_path / "last.ckpt")
    assert list(resumed.trained) == [2]
    assert torch.equal(resumed.order(2), straight.order(2))  # same subset, same order


def test_a_training_step_without_per_sample_values_gets_a_one_line_error(tmp_path):
    loader, importance, _ = rcap_setup(tmp_path / "loss")
    module = Recorder(loader, per_sample=("logits",))  # RCAP reads "loss"
    with pytest.raises(InputError, match=r'"per_sample": \{"loss"') as error:
        trainer(DataCullCallback(loader, importance)).fit(module)
    assert "\n" not in str(error.value)


def test_bad_arguments_are_refused_at_construction(tmp_path):
    from datacull.methods.CCS import CCSDataLoader

    dataset = digits_dataset()
    with pytest.raises(InputError, match="needs a DCDataLoader"):
        DataCullCallback(DataLoader(dataset))
    with pytest.raises(InputError, match="pass importance="):
        DataCullCallback(CCSDataLoader(dataset, pruning_rate=0.5, beta=0.1))
    with pytest.raises(InputError, match="nothing to do"):
        DataCullCallback(None)


def test_without_lightning_datacull_imports_and_the_callback_names_the_extra():
    code = (
        "import sys\n"
        "for name in ('lightning', 'lightning.pytorch', 'pytorch_lightning'): sys.modules[name] = None\n"
        "import datacull, datacull.data, datacull.methods.rcap\n"
        "try:\n"
        "    from datacull.lightning import DataCullCallback\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == 'datacull.lightning needs Lightning: pip install "datacull[lightning]"\n'


# ------------------------------------------------------------------------------ the traps of everyday setups
def test_a_none_loader_with_an_importance_is_refused_naming_the_datamodule_case(tmp_path):
    dataset = digits_dataset()
    from datacull.methods.RCAP import RCAPImportance

    importance = RCAPImportance(dataset, logger_object=DCLogger(tmp_path / "loss"), beta=0.25)
    with pytest.raises(
        InputError, match=r"would prune nothing: .* LightningDataModule that builds its loader in setup"
    ):
        DataCullCallback(None, importance)


def test_infobatch_anneals_over_the_trainers_epochs_and_says_so(tmp_path, caplog):
    from datacull.methods.infobatch import InfoBatchDataLoader
    from datacull.methods.loss import LossImportance

    dataset = digits_dataset()
    loader = InfoBatchDataLoader(dataset, 0.5, num_epochs=20, batch_size=128, seed=0)
    importance = LossImportance(dataset, logger_object=DCLogger(tmp_path / "loss"))
    model = Recorder(loader)
    trainer(DataCullCallback(loader, importance), epochs=4, reload_dataloaders_every_n_epochs=1).fit(model)
    assert loader.num_epochs == 4
    assert "planned num_epochs=20 but the Trainer runs max_epochs=4" in caplog.text
    assert model.subset_sizes[3] == N  # the last (1 - delta) of the Trainer's epochs train on all data
    assert torch.cat(model.weights[3]).eq(1).all()


def test_a_mid_epoch_checkpoint_is_refused_in_one_line(tmp_path):
    from datacull.methods.RS2 import RS2DataLoader

    loader = RS2DataLoader(digits_dataset(), 0.5, batch_size=64, seed=0)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=5, save_top_k=-1)
    fit = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[DataCullCallback(loader), checkpoints],
    )
    fit.fit(Recorder(loader))
    path = sorted(tmp_path.glob("*step=5*.ckpt"))[0]
    again = RS2DataLoader(digits_dataset(), 0.5, batch_size=64, seed=0)
    resumed = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        callbacks=[DataCullCallback(again)],
    )
    with pytest.raises(
        InputError, match=r"written 5 batch\(es\) into epoch 0: .* resumes from the end of an epoch"
    ):
        resumed.fit(Recorder(again), ckpt_path=path)


def test_a_resample_during_a_pass_keeps_that_pass_weighted_for_its_own_subset():
    from datacull.methods.infobatch import InfoBatchDataLoader

    loader = InfoBatchDataLoader(digits_dataset(), 0.5, num_epochs=10, batch_size=256, seed=0)
    losses = np.linspace(0, 1, N)
    loader.resample(losses)
    first = loader.sample_weights.clone()
    steps = []
    for step, (_, _, index) in enumerate(loader):
        steps.append((index, loss_weights(loader, index)))
        if step == 0:  # mid-pass: choose the next pass's subset, an annealing epoch (all weights 1)
            loader.set_epoch(9)
            loader.resample(losses)
    assert all(torch.equal(weights, first[index]) for index, weights in steps)
    assert any((weights > 1).any() for _, weights in steps)  # the running pass kept its up-weighting
    assert all(loss_weights(loader, index).eq(1).all() for _, _, index in loader)  # the next pass has its own


# ------------------------------------------------------------------------------------------------ several ranks
@pytest.mark.slow
def test_the_docs_datamodule_example_under_ddp_trains_disjoint_shares_of_one_subset(tmp_path):
    """docs/scaling.md's LightningDataModule example, as printed (Trainer(devices=2, strategy="ddp"), here on 2 CPU
    processes that Lightning starts itself): one subset per epoch on both ranks, disjoint shares covering it, equal
    steps, and the merged per-sample losses of both ranks in each epoch's file."""
    from .ddp_runs import check_ranks, docs_block, launch

    (tmp_path / "fit.py").write_text(docs_block("LightningDataModule"))
    out = launch(tmp_path, sys.executable, "-m", "tests.ddp_runs", "script", "fit.py", "out")
    ranks = check_ranks(out)
    assert list(ranks[0]["subsets"]) == ["0", "1", "2"]
    assert ranks[0]["subsets"]["0"] != ranks[0]["subsets"]["1"]  # RCAP resampled from the merged losses


@pytest.mark.slow
def test_resuming_under_ddp_trains_the_same_subsets_and_shares_as_the_uninterrupted_run(tmp_path):
    """test_resuming_from_a_lightning_checkpoint_... under torchrun with 2 ranks: each rank resumes on the subset,
    and trains the batches, that it trained without the interruption."""
    from .ddp_runs import check_ranks, launch, torchrun

    out = launch(tmp_path, *torchrun("-m", "tests.ddp_runs", "lightning_resume", "out"))
    straight, resumed = check_ranks(out, "straight"), check_ranks(out, "resumed")
    assert list(resumed[0]["subsets"]) == ["2"]
    for rank in (0, 1):
        assert resumed[rank]["subsets"]["2"] == straight[rank]["subsets"]["2"]
        assert resumed[rank]["batches"]["2"] == straight[rank]["batches"]["2"]


def test_under_several_ranks_a_loader_or_logger_that_opts_out_of_sharding_is_refused(tmp_path):
    from types import SimpleNamespace

    from datacull.methods.RS2 import RS2DataLoader

    ranks = SimpleNamespace(world_size=2)
    whole = RS2DataLoader(digits_dataset(), 0.5, batch_size=64, seed=0, distributed=False)
    with pytest.raises(InputError, match=r"distributed=False\) under 2 ranks would train the whole subset"):
        DataCullCallback(whole).setup(ranks, None, "fit")
    alone = DCLogger(tmp_path / "loss", distributed=False)
    loader = RS2DataLoader(digits_dataset(), 0.5, batch_size=64, seed=0)
    with pytest.raises(InputError, match=r"DCLogger\(distributed=False\) for 'loss' under 2 ranks"):
        DataCullCallback(loader, loggers=alone).setup(ranks, None, "fit")
    DataCullCallback(loader, loggers=DCLogger(tmp_path / "merged")).setup(
        ranks, None, "fit"
    )  # no group: fine
