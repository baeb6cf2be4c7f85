"""DCDataset and DCDataLoader: the original API, with pruning_rate as the fraction removed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from datacull import DCDataLoader, DCDataset
from datacull.errors import InputError
from datacull.sampling import kept_count

from .helpers import tensor_dataset


class Labelled(Dataset):
    def __init__(self, labels, attribute="targets"):
        setattr(self, attribute, list(labels))
        self._labels = list(labels)

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        return torch.tensor([float(index)]), self._labels[index]


class Unlabelled(Labelled):
    def __init__(self, labels):
        self._labels = list(labels)


class KeepFirst(DCDataLoader):
    """A user subclass written the way the original README shows."""

    def compute_subset(self, sample_importance):
        return list(range(self.required_num_samples))


class RandomPruner(DCDataLoader):
    """The original README's custom pruner, verbatim apart from the class name."""

    def compute_subset(self, sample_importance):
        indices = np.arange(self.total_num_samples)
        np.random.shuffle(indices)
        return indices[: self.required_num_samples].tolist()


def test_items_gain_their_index_as_last_element():
    dataset = DCDataset(TensorDataset(torch.arange(5.0)[:, None], torch.tensor([0, 1, 0, 1, 2])))
    x, y, index = dataset[3]
    assert index == 3 and int(y) == 1 and float(x[0]) == 3.0
    assert len(dataset) == 5 and dataset.dataset is not None


@pytest.mark.parametrize(
    "wrapped",
    [
        Labelled([2, 0, 1], "targets"),
        Labelled([2, 0, 1], "labels"),
        TensorDataset(torch.zeros(3, 1), torch.tensor([2, 0, 1])),
        Subset(Labelled([9, 2, 7, 0, 1]), [1, 3, 4]),
    ],
    ids=["targets", "labels", "tensordataset", "subset"],
)
def test_targets_are_discovered_without_reading_items(wrapped):
    assert DCDataset(wrapped).targets.tolist() == [2, 0, 1]


def test_targets_fall_back_to_one_pass_over_the_data():
    with pytest.warns(UserWarning, match="reading every item once"):
        assert DCDataset(Unlabelled([1, 1, 0])).targets.tolist() == [1, 1, 0]


def test_pruning_rate_is_the_fraction_removed():
    loader = KeepFirst(tensor_dataset([0] * 10), pruning_rate=0.2, batch_size=4)
    assert loader.total_num_samples == 10 and loader.required_num_samples == 8
    assert len(loader) == 3  # before the first resample: every sample
    loader.resample(None)
    assert len(loader) == 2
    seen = torch.cat([batch[-1] for batch in loader])
    assert sorted(seen.tolist()) == list(range(8))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "half"])
def test_pruning_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(InputError, match="pruning_rate"):
        KeepFirst(tensor_dataset([0] * 4), pruning_rate=rate)


def test_kept_count_rounds_half_up_and_keeps_one():
    assert kept_count(5, 0.3) == 4  # 3.5 -> 4
    assert kept_count(10, 0.7) == 3  # 3.0000000000000004 -> 3
    assert kept_count(1, 0.9) == 1
    assert kept_count(0, 0.5) == 0


def test_original_readme_subclass_works_with_keyword_arguments():
    pruner = RandomPruner(tensor_dataset([0, 1] * 10), pruning_rate=0.3, batch_size=4)
    kept = pruner.resample(None)
    assert kept.numel() == 14 and torch.unique(kept).numel() == 14


def test_static_loader_chooses_once_and_dynamic_every_call():
    class Counter(DCDataLoader):
        calls = 0

        def compute_subset(self, sample_importance):
            type(self).calls += 1
            return torch.randperm(self.total_num_samples, generator=self.rng)[: self.required_num_samples]

    static = Counter(tensor_dataset([0] * 20), 0.5, static=True, seed=1)
    first = static.resample(None).clone()
    assert torch.equal(static.resample(None), first) and Counter.calls == 1
    dynamic = Counter(tensor_dataset([0] * 20), 0.5, static=False, seed=1)
    dynamic.resample(None)
    dynamic.resample(None)
    assert Counter.calls == 3


def test_every_pass_reshuffles_but_a_seed_reproduces_the_order():
    def orders(seed):
        loader = KeepFirst(tensor_dataset([0] * 50), 0.0, batch_size=50, seed=seed)
        return [next(iter(loader))[-1].tolist() for _ in range(2)]

    first, second = orders(3)
    assert first != second and sorted(first) == list(range(50))
    assert orders(3) == [first, second]
    assert orders(4) != [first, second]


def test_torch_generator_makes_a_loader_reproducible():
    def order(seed):
        loader = KeepFirst(
            tensor_dataset([0] * 30), 0.0, batch_size=30, generator=torch.Generator().manual_seed(seed)
        )
        return next(iter(loader))[-1].tolist()

    assert order(7) == order(7) and order(7) != order(8)


def test_shuffle_false_walks_the_subset_in_order():
    loader = KeepFirst(tensor_dataset([0] * 8), 0.5, batch_size=8, shuffle=False)
    loader.resample(None)
    assert next(iter(loader))[-1].tolist() == [0, 1, 2, 3]


def test_dataloader_options_pass_through():
    loader = KeepFirst(
        tensor_dataset([0] * 10), 0.3, batch_size=3, drop_last=True, num_workers=1, pin_memory=False
    )
    loader.resample(None)
    batches = list(loader)
    assert len(loader) == 2 == len(batches) and all(batch[-1].numel() == 3 for batch in batches)


def test_loader_refuses_an_own_sampler():
    with pytest.raises(ValueError, match="sampler"):
        KeepFirst(tensor_dataset([0] * 4), 0.5, sampler=[0, 1])


@pytest.mark.parametrize(
    "scores, message",
    [
        (np.ones(3), "expected one score per sample"),
        (np.array([0.1, np.nan, 0.2, 0.3]), "NaN/inf"),
        (np.array([0.1, np.inf, 0.2, 0.3]), "NaN/inf"),
        (np.array([[0.1, 0.2], [0.3, 0.4]]), "expected one score per sample"),
    ],
)
def test_resample_refuses_unusable_importance(scores, message):
    loader = KeepFirst(tensor_dataset([0] * 4), 0.5)
    with pytest.raises(InputError, match=message):
        loader.resample(scores)


def test_subclass_returning_bad_indices_is_caught():
    class Repeats(DCDataLoader):
        def compute_subset(self, sample_importance):
            return [0, 0, 1]

    class OutOfRange(DCDataLoader):
        def compute_subset(self, sample_importance):
            return [0, 9]

    with pytest.raises(ValueError, match="repeated"):
        Repeats(tensor_dataset([0] * 4), 0.25).resample(None)
    with pytest.raises(ValueError, match="outside"):
        OutOfRange(tensor_dataset([0] * 4), 0.5).resample(None)


def test_weights_returned_beside_indices_become_per_sample_loss_weights():
    class Weighted(DCDataLoader):
        def compute_subset(self, sample_importance):
            return torch.tensor([1, 3]), torch.tensor([2.0, 0.5])

    loader = Weighted(tensor_dataset([0] * 4), 0.5)
    loader.resample(None)
    assert loader.sample_weights.tolist() == [1.0, 2.0, 1.0, 0.5]


def test_state_dict_round_trip_continues_identically():
    def build():
        loader = KeepFirst(tensor_dataset([0] * 40), 0.25, batch_size=40, seed=5)
        loader.resample(None)
        return loader

    original = build()
    next(iter(original))
    state = original.state_dict()
    expected = next(iter(original))[-1].tolist()
    restored = build()
    restored.load_state_dict(state)
    assert next(iter(restored))[-1].tolist() == expected


def test_drop_last_with_a_subset_smaller_than_a_batch_is_refused_when_it_is_chosen():
    loader = KeepFirst(
        tensor_dataset([0] * 100), pruning_rate=0.9, batch_size=16, drop_last=True
    )  # keeps 10 < 16
    with pytest.raises(InputError, match=r"keeps 10 samples, fewer than batch_size=16 with drop_last=True"):
        loader.resample(None)


def test_iterating_before_any_resample_says_that_it_walks_all_samples():
    loader = KeepFirst(tensor_dataset([0] * 20), pruning_rate=0.5, batch_size=4)
    with pytest.warns(
        UserWarning, match=r"KeepFirst walks all 20 samples: resample\(\) has not chosen a subset"
    ):
        assert sum(len(batch[0]) for batch in loader) == 20
    loader.resample(None)
    assert sum(len(batch[0]) for batch in loader) == 10


class DictItems(Dataset):
    """Text-like items: a dict of tensors with the label under "label", no .targets."""

    def __init__(self, labels):
        self.labels_list = labels

    def __len__(self):
        return len(self.labels_list)

    def __getitem__(self, index):
        return {"input_ids": torch.arange(4) + index, "label": self.labels_list[index]}


def test_dict_items_find_their_labels_by_key_and_without_one_the_error_names_both_fixes():
    wrapped = DCDataset(DictItems([0, 1, 1, 0]), label_key="label")
    assert wrapped.targets.tolist() == [0, 1, 1, 0]
    item, index = wrapped[2]
    assert index == 2 and item["label"] == 1
    with pytest.raises(
        InputError, match=r"items are dicts \(input_ids, label\) .* label_key='label'.* \.targets"
    ):
        _ = DCDataset(DictItems([0, 1])).targets


def test_an_iterable_dataset_is_refused_at_the_wrapper():
    from torch.utils.data import IterableDataset

    class Stream(IterableDataset):
        def __iter__(self):
            yield from range(3)

    with pytest.raises(InputError, match=r"needs a map-style dataset .* Stream is iterable only"):
        DCDataset(Stream())


def test_set_epoch_on_the_sampler_makes_an_epochs_order_a_function_of_the_seed_and_the_epoch():
    """DistributedSampler's contract, which Lightning and DDP loops rely on (Lightning calls it every epoch, and
    leaves a loader whose sampler is a DistributedSampler as it is)."""
    from torch.utils.data import DistributedSampler

    from datacull.catalog import get_sampler

    def loader(seed):
        return get_sampler("random")(tensor_dataset([0, 1] * 20), pruning_rate=0.5, batch_size=4, seed=seed)

    first, second = loader(0), loader(0)
    assert isinstance(first.sampler, DistributedSampler)
    assert list(first.sampler) != list(first.sampler)  # without set_epoch: a new order every pass
    first.sampler.set_epoch(3)
    second.sampler.set_epoch(3)
    order = list(first.sampler)
    assert order == list(first.sampler) == list(second.sampler)  # however often it was iterated before
    first.sampler.set_epoch(4)
    assert list(first.sampler) != order and sorted(first.sampler) == sorted(order)
    other = loader(1)
    other.sampler.set_epoch(3)
    assert list(other.sampler) != order
