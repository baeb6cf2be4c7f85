"""DCDataset (items carry their index) and DCDataLoader (a DataLoader that draws only the current subset)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Subset, TensorDataset

from .distributed import (
    DistContext,
    broadcast_object,
    check_same_on_every_rank,
    gather_objects,
    process_group,
    rank_share,
    rank_share_size,
)
from .errors import InputError
from .legacy import RATE_VARIABLE, interpret_rate
from .sampling import as_index_tensor, check_pruning_rate, kept_count

log = logging.getLogger("datacull")


def discover_targets(dataset: Any, label_key: Any = None) -> np.ndarray:
    """Integer class labels of ``dataset``, found without touching the data where possible.

    Looks at ``.targets``, then ``.labels``, then a ``TensorDataset``'s second tensor, follows ``Subset``
    into its parent, and only as a last resort reads every item once: element 1 of a tuple item, or
    ``item[label_key]`` of a dict item (text data sets), which needs ``label_key``.
    """
    found = _targets_without_scan(dataset)
    if found is not None:
        return found
    first = dataset[0] if len(dataset) else None
    if isinstance(first, Mapping) and label_key is None:
        raise InputError(
            f"{type(dataset).__name__}'s items are dicts ({', '.join(map(str, list(first)[:5]))}) and it has no "
            ".targets: name the label's key, DCDataset(dataset, label_key='label'), or give the data set .targets"
        )
    key = 1 if label_key is None else label_key
    warnings.warn(
        f"{type(dataset).__name__} has no .targets or .labels: reading every item once to find the labels",
        stacklevel=3,
    )
    where = "the second element of each item" if label_key is None else f"each item's {label_key!r}"
    return _as_label_array([dataset[i][key] for i in range(len(dataset))], where)


def _targets_without_scan(dataset: Any) -> np.ndarray | None:
    if isinstance(dataset, DCDataset):
        return dataset.targets
    if isinstance(dataset, Subset):
        parent = _targets_without_scan(dataset.dataset)
        return None if parent is None else parent[np.asarray(dataset.indices, dtype=np.int64)]
    for attribute in ("targets", "labels"):
        values = getattr(dataset, attribute, None)
        if values is not None:
            return _as_label_array(values, f".{attribute}")
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return _as_label_array(dataset.tensors[1], "the TensorDataset's second tensor")
    return None


def _as_label_array(values: Any, source: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    elif isinstance(values, Sequence) and values and isinstance(values[0], torch.Tensor):
        values = [int(v) for v in values]
    array = np.asarray(values)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)
    ):
        if array.ndim == 1 and np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            return array.astype(np.int64)
        raise InputError(
            f"class labels from {source} must be a 1-D integer array; got shape {array.shape}, dtype {array.dtype}"
        )
    return array.astype(np.int64)


class DCDataset(Dataset):
    """Wraps any map-style dataset so that each item is ``(*original_item, index)``.

    The index is what ties a batch's per-sample metrics back to the sample across epochs.
    """

    def __init__(self, dataset: Dataset, label_key: Any = None):
        if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
            raise InputError(
                f"DCDataset needs a map-style dataset (len() and [index]): {type(dataset).__name__} is iterable "
                "only, so its samples have no index to prune by"
            )
        super().__init__()
        self.dataset = dataset
        self.label_key = label_key  # for dict items without .targets: the key that holds the label
        self._targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple:
        item = self.dataset[index]
        if not isinstance(item, tuple | list):
            item = (item,)
        return (*item, index)

    @property
    def targets(self) -> np.ndarray:
        """Integer labels, discovered once (see :func:`discover_targets`) and cached."""
        if self._targets is None:
            self._targets = discover_targets(self.dataset, self.label_key)
            if len(self._targets) != len(self):
                raise InputError(f"found {len(self._targets)} labels for {len(self)} samples")
        return self._targets


class _PickledGenerator:
    """A ``torch.Generator`` in a pickle, as plain bytes: a generator pickles its state as a temporary tensor, which
    ``torch.multiprocessing``'s spawn (Lightning's ``ddp_spawn``) shares through a file descriptor that is closed
    before the child starts ("bad value(s) in fds_to_keep")."""

    def __init__(self, generator: torch.Generator):
        self.device = str(generator.device)
        self.state = generator.get_state().numpy().tobytes()

    def restore(self) -> torch.Generator:
        generator = torch.Generator(self.device)
        generator.set_state(torch.frombuffer(bytearray(self.state), dtype=torch.uint8))
        return generator


class _GeneratorsPickleAsBytes:
    def __getstate__(self) -> dict[str, Any]:
        return {
            name: _PickledGenerator(value) if isinstance(value, torch.Generator) else value
            for name, value in self.__dict__.items()
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            self.__dict__[name] = value.restore() if isinstance(value, _PickledGenerator) else value


class SubsetSampler(_GeneratorsPickleAsBytes, DistributedSampler):
    """Yields the current subset's indices, freshly shuffled on every pass when ``shuffle`` is set.

    Under ``torch.distributed`` (a process group of several ranks initialised, and ``distributed`` set) a pass
    yields this rank's share of the shuffled subset (:func:`datacull.distributed.rank_share`): the shares are
    disjoint, cover the subset and give every rank the same number of batches. It is a ``DistributedSampler``
    so that Lightning, which would otherwise wrap the loader's sampler in its own, leaves it as it is.
    ``set_epoch(e)`` (what Lightning and ``DistributedSampler`` loops call) makes the order of epoch e a function of
    the seed and e alone; without it every pass draws the next order from the generator.
    """

    def __init__(
        self,
        indices: torch.Tensor,
        shuffle: bool,
        seed: int,
        *,
        batch_size: int = 1,
        drop_last: bool = False,
        distributed: bool = True,
    ):
        # not DistributedSampler.__init__: it needs the process group now, this sampler looks for it at every pass
        self.indices = indices
        self.shuffle = shuffle
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.epoch: int | None = None
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.distributed = distributed

    @property
    def context(self) -> DistContext:
        return process_group(self.distributed)

    @property
    def num_replicas(self) -> int:
        return self.context.world_size

    @property
    def rank(self) -> int:
        return self.context.rank

    def set_indices(self, indices: torch.Tensor) -> None:
        self.indices = indices

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def epoch_order(self) -> torch.Tensor:
        """The order of one pass over the whole subset, every rank's share included, as an index tensor."""
        if not self.shuffle:
            return self.indices
        generator = (
            self.generator if self.epoch is None else torch.Generator().manual_seed(self.seed + self.epoch)
        )
        return self.indices[torch.randperm(self.indices.numel(), generator=generator)]

    def __iter__(self):
        share = rank_share(self.epoch_order(), self.context, self.batch_size, self.drop_last)
        return iter(share.tolist())

    def __len__(self) -> int:
        return rank_share_size(int(self.indices.numel()), self.context, self.batch_size, self.drop_last)


class DCDataLoader(_GeneratorsPickleAsBytes, DataLoader):
    """A ``torch.utils.data.DataLoader`` whose sampler draws only the subset chosen by ``compute_subset``.

    ``pruning_rate`` is the fraction of samples REMOVED: 0.2 keeps 80% (``required_num_samples`` =
    round(0.8 N)). ``static`` loaders choose their subset on the first :meth:`resample` and only reshuffle
    afterwards; dynamic ones choose again on every call. Until the first call the loader walks all samples.
    Every DataLoader option works; ``shuffle`` (default True) reshuffles the subset every pass, and ``seed``
    or ``generator`` make both the subset choice and the order reproducible.

    Under ``torch.distributed`` (a process group of several ranks initialised; ``distributed=False`` opts out)
    nothing in the training loop changes: every rank chooses the same subset (one seed for all ranks: the
    ``seed=`` each was given, which must agree, else rank 0's; checked after every resample) and a pass yields
    only this rank's share of it, as ``DistributedSampler`` would: disjoint shares covering the subset, the same
    number of batches on every rank, ``batch_size`` samples per rank and step (see :class:`SubsetSampler`).

    Subclasses implement :meth:`compute_subset`, returning the indices to keep, or ``(indices, weights)``
    where ``weights`` holds one loss weight per kept index (see :attr:`sample_weights`). What a sampler needs
    from the run it declares as class attributes, read by the runner (and the Lightning callback).
    """

    paper: ClassVar[str] = ""
    #: Whether it chooses once (True) or on every resample (False). A subclass may declare it here; the
    #: ``static`` argument, when given, decides for the instance.
    static: bool = False
    #: True for samplers that need scores (``resample(None)`` is refused), False for those that ignore them
    #: (the runner then skips scoring), None (user subclasses) when unknown: whatever is given is passed on.
    uses_scores: ClassVar[bool | None] = None
    #: True for samplers that draw in proportion to scores: plain arrays must then be non-negative (scores
    #: that declare a direction are converted, see :func:`datacull.sampling.sampling_weights`).
    needs_nonnegative_importance: ClassVar[bool] = False
    #: True for samplers that schedule themselves over the training length: the runner passes ``num_epochs``.
    needs_num_epochs: ClassVar[bool] = False
    #: True for samplers that choose by per-class validation accuracy (MetriQ): the runner measures it with a
    #: query run of ``query_epochs`` epochs (None: its default share of the run) unless ``class_wise_acc`` is set.
    needs_class_accuracy: ClassVar[bool] = False
    class_wise_acc: Any = None
    query_epochs: int | None = None
    #: Attributes (beyond the subset and generators) that ``state_dict`` saves, for exact resumption.
    state_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        dataset: Dataset,
        pruning_rate: float,
        static: bool | None = None,
        *,
        seed: int | None = None,
        distributed: bool = True,
        **kwargs: Any,
    ):
        for owned in ("sampler", "batch_sampler"):
            if kwargs.get(owned) is not None:
                raise ValueError(f"DCDataLoader chooses its own {owned}; do not pass {owned}=")
        shuffle = bool(kwargs.pop("shuffle", True))
        generator = kwargs.get("generator")
        self.original_dataset = dataset
        self.total_num_samples = len(dataset)
        # DataCull 1.0.2 kept this fraction; DATACULL_PRUNING_RATE says which meaning user code wants (legacy.py)
        removed, legacy_kept, self.rate_meaning = interpret_rate(
            type(self), pruning_rate, self.total_num_samples
        )
        self.given_pruning_rate = pruning_rate
        self.pruning_rate = check_pruning_rate(removed)
        self.static = type(self).static if static is None else bool(static)
        self.required_num_samples = (
            legacy_kept if legacy_kept is not None else kept_count(self.total_num_samples, self.pruning_rate)
        )
        self.distributed = bool(distributed)
        self.seed_given = seed is not None
        if seed is None:  # drawn from the given generator, on its device (a CUDA generator draws on the GPU)
            device = generator.device if generator is not None else "cpu"
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
        # under a process group already initialised every rank takes one seed now, before anything draws from it
        context = process_group(self.distributed)
        self.seed = self._agreed_seed(context, int(seed))
        self._joined = context.enabled
        self.rng = torch.Generator().manual_seed(
            self.seed
        )  # drives the subset choice (DataLoader owns .generator)
        self.subset_indices: torch.Tensor | None = None
        self._told_unresampled = False
        self.sample_weights: torch.Tensor | None = None
        self.pass_weights: torch.Tensor | None = None  # the weights of the pass under way (see __iter__)
        self.num_resamples = 0
        self.epoch: int | None = None
        all_indices = torch.arange(self.total_num_samples)
        subset_sampler = SubsetSampler(
            all_indices,
            shuffle,
            self.seed + 1,
            batch_size=kwargs.get("batch_size", 1) or 1,  # None (no batching): one sample per step
            drop_last=bool(kwargs.get("drop_last", False)),
            distributed=self.distributed,
        )
        super().__init__(dataset, sampler=subset_sampler, **kwargs)

    # ----------------------------------------------------------------------------------------------- hooks
    def compute_subset(self, sample_importance: Any) -> Any:
        """Return the indices to keep (list, array or tensor), or ``(indices, weights)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_subset(sample_importance)")

    def set_class_wise_acc(self, class_wise_acc: Any) -> None:
        """Give a sampler that ``needs_class_accuracy`` the per-class validation accuracies it chooses by."""
        raise NotImplementedError(f"{type(self).__name__} does not choose by class accuracy")

    # ------------------------------------------------------------------------------------------ public API
    @cached_property
    def targets(self) -> np.ndarray:
        """Integer class labels of the dataset (see :func:`discover_targets`)."""
        return discover_targets(self.original_dataset)

    @cached_property
    def labels_tensor(self) -> torch.Tensor:
        """Class labels as an int64 tensor: samplers index it on every resample."""
        return torch.from_numpy(np.ascontiguousarray(self.targets, dtype=np.int64))

    def set_epoch(self, epoch: int) -> None:
        """Tell the loader which epoch the next :meth:`resample` is for (samplers with epoch-dependent
        rules, e.g. InfoBatch's annealing, read it; without calls they count resamples instead)."""
        self.epoch = int(epoch)

    @property
    def reads_scores(self) -> bool:
        """Whether :meth:`resample` is given scores: False only for samplers that ignore them."""
        return self.uses_scores is not False

    @property
    def requires_scores(self) -> bool:
        """Whether :meth:`resample` refuses to choose without scores (an unknown ``uses_scores`` does not)."""
        return self.uses_scores is True

    @property
    def current_epoch(self) -> int:
        return self.epoch if self.epoch is not None else self.num_resamples

    def join_process_group(self) -> None:
        """Make this loader rank 0's on every rank (seed, generators, sampler state), once, when a process group
        was initialised after it was built (Lightning builds loaders before it starts the ranks): a collective,
        called by the Lightning callback's ``setup``, else by the first :meth:`resample` or pass under the group."""
        context = process_group(self.distributed)
        if self._joined or not context.enabled:
            return
        self._joined = True
        # explicit seeds must agree; drawn ones are replaced by rank 0's
        self._agreed_seed(context, self.seed)
        if not self.seed_given:
            self.seed, state = broadcast_object(context, (self.seed, self.state_dict()))
            self.load_state_dict(state)
            self.sampler.seed = self.seed + 1

    def _agreed_seed(self, context: DistContext, seed: int) -> int:
        """The one seed of all ranks: the ``seed=`` every rank was given (a differing one is an error), else
        rank 0's drawn seed."""
        seeds = gather_objects(context, (seed, self.seed_given))
        flags = [was_given for _, was_given in seeds]
        if any(flags) and (not all(flags) or len({value for value, _ in seeds}) > 1):
            raise InputError(
                f"{type(self).__name__} got seeds {[value if g else None for value, g in seeds]} on ranks "
                f"0..{len(seeds) - 1}: every rank must choose the same subset, so pass the same seed= on every "
                "rank (or none: rank 0's is then used everywhere)"
            )
        return seeds[0][0]

    def __iter__(self):
        self.join_process_group()
        # a pass walks the subset chosen before it started, with that subset's loss weights, even when
        # resample() is called during the pass (the sampler's order is fixed when the pass starts)
        self.pass_weights = self.sample_weights
        if self.subset_indices is None and self.pruning_rate > 0 and not self._told_unresampled:
            self._told_unresampled = True
            warnings.warn(
                f"{type(self).__name__} walks all {self.total_num_samples} samples: resample() has not chosen a "
                f"subset yet (pruning_rate={self.given_pruning_rate:g} applies from the first resample)",
                stacklevel=2,
            )
        return super().__iter__()

    def resample(self, sample_importance: Any = None) -> torch.Tensor:
        """Choose the subset for the coming epoch(s) and point the sampler at it; returns the kept indices.

        Static loaders compute the subset once; later calls only reshuffle (which every pass does anyway).
        """
        if self.static and self.subset_indices is not None:
            return self.subset_indices
        self.join_process_group()
        context = process_group(self.distributed)
        self.validate_importance(sample_importance)
        result = self.compute_subset(sample_importance)
        indices, weights = result if isinstance(result, tuple) else (result, None)
        indices = as_index_tensor(indices)
        self._check_indices(indices)
        per_step = (self.batch_size or 1) * context.world_size
        if self.drop_last and 0 < indices.numel() < per_step:
            ranks = f" x {context.world_size} ranks" if context.enabled else ""
            raise InputError(
                f"{type(self).__name__} keeps {indices.numel()} samples, fewer than batch_size={self.batch_size}"
                f"{ranks} with drop_last=True: every epoch would train no batch; lower batch_size or drop drop_last"
            )
        # under DDP a rank that chose otherwise would train other samples than its share: stop every rank instead
        check_same_on_every_rank(
            context,
            torch.cat([indices, self.sampler.generator.get_state().long()]),
            "the subset",
            "every rank must call resample() with the same scores (compute them on every rank from the merged "
            "DCLogger, or broadcast rank 0's) and iterate the loader as often",
        )
        if self.subset_indices is None:
            log.info(
                "%s keeps %d of %d samples (pruning_rate=%g read as the fraction %s%s)",
                type(self).__name__,
                indices.numel(),
                self.total_num_samples,
                self.given_pruning_rate,
                self.rate_meaning,
                f", {RATE_VARIABLE}=kept" if self.rate_meaning == "kept" else "",
            )
        self.subset_indices = indices
        self.sample_weights = None if weights is None else self._dense_weights(indices, weights)
        self.sampler.set_indices(indices)
        self.num_resamples += 1
        return indices

    def trained_part(self, order: torch.Tensor, batch_size: int) -> torch.Tensor:
        """What a pass over ``order`` trains in batches of ``batch_size``: all of it, or with ``drop_last`` only its
        whole batches, as the DataLoader itself drops the rest (for the runner, which batches the subset itself)."""
        return order[: order.numel() // batch_size * batch_size] if self.drop_last else order

    def validate_importance(self, sample_importance: Any) -> None:
        """One-line errors for scores that cannot be used: missing, wrong length, NaN/inf, negative."""
        name = type(self).__name__
        if sample_importance is None:
            if self.requires_scores:
                raise InputError(f"{name} ranks samples by importance; resample() got None instead of scores")
            return
        values = np.asarray(
            sample_importance.detach().cpu().double()  # bf16 and fp16 tensors have no numpy counterpart
            if isinstance(sample_importance, torch.Tensor) and sample_importance.is_floating_point()
            else sample_importance.detach().cpu()
            if isinstance(sample_importance, torch.Tensor)
            else sample_importance
        )
        if values.ndim != 1 or values.shape[0] != self.total_num_samples:
            raise InputError(
                f"{name}.resample(): importance has shape {values.shape}, expected one score per sample ({self.total_num_samples},)"
            )
        if not np.issubdtype(values.dtype, np.number) and values.dtype != np.bool_:
            raise InputError(f"{name}.resample(): importance must be numeric; got dtype {values.dtype}")
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(
                f"{name}.resample(): importance has {int(bad.sum())} NaN/inf values (first at sample {int(np.argmax(bad))})"
            )
        declared = getattr(sample_importance, "higher_is_harder", None)
        if self.needs_nonnegative_importance and declared is None and (values < 0).any():
            raise InputError(
                f"{name}.resample(): importance is used as sampling probabilities but has {int((values < 0).sum())} negative values"
            )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this loader stopped (subset, weights, RNG states)."""
        state = {
            "subset_indices": self.subset_indices,
            "sample_weights": self.sample_weights,
            "num_resamples": self.num_resamples,
            "epoch": self.epoch,
            "rng": self.rng.get_state(),
            "shuffle_generator": self.sampler.generator.get_state(),
        }
        state.update({name: getattr(self, name) for name in self.state_attributes})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.subset_indices = state["subset_indices"]
        self.sample_weights = state["sample_weights"]
        self.num_resamples = state["num_resamples"]
        self.epoch = state["epoch"]
        self.rng.set_state(state["rng"])
        self.sampler.generator.set_state(state["shuffle_generator"])
        if self.subset_indices is not None:
            self.sampler.set_indices(self.subset_indices)
        for name in self.state_attributes:
            setattr(self, name, state[name])

    # ------------------------------------------------------------------------------------------- internals
    def _check_indices(self, indices: torch.Tensor) -> None:
        name = type(self).__name__
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.total_num_samples):
            raise ValueError(
                f"{name}.compute_subset() returned indices outside [0, {self.total_num_samples})"
            )
        if torch.unique(indices).numel() != indices.numel():
            raise ValueError(f"{name}.compute_subset() returned repeated indices")

    def _dense_weights(self, indices: torch.Tensor, weights: Any) -> torch.Tensor:
        weights = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
        weights = weights.detach().to("cpu", torch.float32).reshape(-1)
        if weights.numel() != indices.numel():
            raise ValueError(
                f"{type(self).__name__}: {weights.numel()} weights for {indices.numel()} indices"
            )
        dense = torch.ones(self.total_num_samples, dtype=torch.float32)
        dense[indices] = weights
        return dense
