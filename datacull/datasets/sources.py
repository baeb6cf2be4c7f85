"""Data sets by name from the libraries users reach for: torchvision's and Hugging Face's.

- ``dataset=torchvision dataset.name=SVHN``: any class of ``torchvision.datasets`` with ``train=`` or ``split=``,
  its images as uint8 tensors (augmented and normalized by the engine like every image data set), in memory or
  streamed (``dataset.in_memory``).
- ``dataset=hf dataset.path=<hub name or save_to_disk folder>``: a Hugging Face data set's train and test splits,
  its input column (a tensor; several columns a dict of tensors; an image column uint8 images) and label column.

Nothing downloads unless ``dataset.download=true``; a data set that is not there is a one-line error that says so.
"""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from ..registry import register_dataset
from .common import ImageData, assemble, classes_of, configured_workers, default_data_root, labels_of
from .files import pil_to_uint8
from .stream import StreamedSamples, signature_of


def _image_settings(cfg: Any) -> tuple[int | None, tuple[int, int] | None]:
    """``dataset.channels`` (1, 3, or null: as the images come) and ``dataset.image_size`` ([H, W] or null)."""
    channels = cfg.get("channels")
    size = tuple(int(v) for v in cfg.image_size) if cfg.get("image_size") else None
    return (None if channels is None else int(channels)), size


class PILImages(Dataset):
    """A data set of ``(PIL image, label)`` as ``(uint8 (C, H, W) image, label)``."""

    def __init__(self, dataset: Dataset, channels: int | None, size: tuple[int, int] | None):
        self.dataset, self.channels, self.size = dataset, channels, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.dataset[index][:2]
        return pil_to_uint8(image, self.channels, self.size), label


@register_dataset("torchvision")
def load_torchvision(cfg: Any, cache_dir: Path) -> ImageData:
    """A torchvision data set by class name: dataset.name=SVHN; downloads only with dataset.download=true."""
    import torchvision.datasets

    name = str(cfg.name)
    dataset_class = getattr(torchvision.datasets, name, None)
    if not (inspect.isclass(dataset_class) and issubclass(dataset_class, Dataset)):
        raise DataError(
            f"dataset=torchvision needs dataset.name=<a class of torchvision.datasets: SVHN, MNIST, FashionMNIST, "
            f"STL10, ...>; got {name}"
        )
    parameters = inspect.signature(dataset_class).parameters
    root = str(Path(cfg.get("root") or default_data_root()).expanduser())
    download = bool(cfg.get("download", False))
    channels, size = _image_settings(cfg)
    workers = configured_workers(cfg)
    splits, train_dataset = {}, None
    for split in ("train", "test"):
        arguments: dict[str, Any] = {"root": root}
        if "train" in parameters:
            arguments["train"] = split == "train"
        elif "split" in parameters:
            arguments["split"] = str(cfg.get(f"{split}_split", split))
        else:
            raise DataError(
                f"torchvision.datasets.{name} takes neither train= nor split=: bring it as dataset=custom "
                f"dataset._target_=torchvision.datasets.{name} with its test split as dataset.test._target_"
            )
        if "download" in parameters:
            arguments["download"] = download
        try:
            dataset = dataset_class(**arguments)
        except (RuntimeError, OSError) as error:
            fix = (
                "add dataset.download=true to download it"
                if not download and "download" in parameters
                else "check dataset.root"
            )
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(
                f"torchvision's {name} ({split}) cannot be loaded from dataset.root={root} ({reason}); {fix}"
            ) from None
        train_dataset = train_dataset or dataset
        identity = signature_of("torchvision", name, root, arguments, channels, size, len(dataset))
        samples = StreamedSamples(PILImages(dataset, channels, size), identity, workers=workers)
        splits[split] = (samples, labels_of(dataset, f"torchvision.datasets.{name} ({split})", workers))
    classes = classes_of(getattr(train_dataset, "classes", None), splits["train"][1], splits["test"][1])
    return assemble(splits, classes, cfg, images=True)


class HFRows(Dataset):
    """Rows of a Hugging Face data set as ``(input, label)``: one column's tensor, several columns as a dict of
    tensors, or an image column as a uint8 ``(C, H, W)`` image (``image``: its channels and size settings)."""

    def __init__(self, table: Any, columns: str | list[str], label: str, image: tuple | None = None):
        self.columns, self.image = columns, image
        names = [columns] if isinstance(columns, str) else list(columns)
        self.table = table.select_columns(names).with_format(None if image else "torch")
        targets = np.asarray(table.with_format("numpy")[label])
        if not np.issubdtype(targets.dtype, np.integer):
            raise DataError(
                f"dataset.label_column={label} holds {targets.dtype} values, not class indices: encode it as one "
                "(datasets' class_encode_column) before saving"
            )
        self.targets = torch.from_numpy(targets.astype(np.int64))

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        row = self.table[int(index)]
        if isinstance(self.columns, str):
            value = row[self.columns]
            return (pil_to_uint8(value, *self.image) if self.image else value), self.targets[index]
        return {column: row[column] for column in self.columns}, self.targets[index]


@contextlib.contextmanager
def _offline(offline: bool):
    """Hugging Face's hub switched off for the block (so nothing downloads), unless ``offline`` is false."""
    import datasets
    import huggingface_hub.constants

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    if offline:
        datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


@register_dataset("hf")
def load_hf(cfg: Any, cache_dir: Path) -> ImageData:
    """A Hugging Face data set (pip install "datacull[hf]"): dataset.path, dataset.input_column, label_column."""
    try:
        import datasets
    except ImportError:
        raise DataError('dataset=hf needs the datasets package: pip install "datacull[hf]"') from None
    path, columns = cfg.get("path"), cfg.get("input_column")
    if not path:
        raise DataError(
            "dataset=hf needs dataset.path=<a Hugging Face hub data set, or a folder written by save_to_disk>"
        )
    if not columns:
        raise DataError("dataset=hf needs dataset.input_column=<column> (or [col1,col2]: a dict of tensors)")
    columns = columns if isinstance(columns, str) else list(columns)
    label = str(cfg.get("label_column", "label"))
    download = bool(cfg.get("download", False))
    folder = Path(path).expanduser()
    if folder.is_dir():
        loaded = datasets.load_from_disk(str(folder))
    else:
        try:
            with _offline(not download):
                loaded = datasets.load_dataset(str(path), cfg.get("config_name"))
        except (ConnectionError, FileNotFoundError, ValueError) as error:
            fix = "add dataset.download=true to download it" if not download else "check dataset.path"
            raise DataError(
                f"dataset.path={path} is neither a save_to_disk folder nor a Hugging Face data set in the local "
                f"cache ({type(error).__name__}); {fix}"
            ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"dataset.path={path} holds one split; datacull needs a train and a test split")
    channels, size = _image_settings(cfg)
    workers = configured_workers(cfg)
    splits, images = {}, False
    for split in ("train", "test"):
        split_name = str(cfg.get(f"{split}_split", split))
        if split_name not in loaded:
            raise DataError(
                f"dataset.path={path} has no split {split_name!r} (it has {', '.join(loaded)}); set "
                f"dataset.{split}_split"
            )
        table = loaded[split_name]
        missing = sorted(
            {label, *([columns] if isinstance(columns, str) else columns)} - set(table.column_names)
        )
        if missing:
            raise DataError(
                f"dataset.path={path} ({split_name}) has no column {', '.join(missing)}; its columns: "
                f"{', '.join(table.column_names)}"
            )
        images = isinstance(columns, str) and isinstance(table.features[columns], datasets.Image)
        rows = HFRows(table, columns, label, (channels, size) if images else None)
        identity = signature_of(
            "hf", str(path), cfg.get("config_name"), split_name, table._fingerprint, columns
        )
        splits[split] = (StreamedSamples(rows, identity, workers=workers), rows.targets)
    names = loaded[str(cfg.get("train_split", "train"))].features[label]
    classes = classes_of(getattr(names, "names", None), splits["train"][1], splits["test"][1])
    return assemble(splits, classes, cfg, images=images)
