"""datacull: data pruning during training for PyTorch.

The library API of the original DataCull (``DCDataset``, ``DCDataLoader``, ``DCLogger``, ``DCImportance``
and the five methods), the registries, and the runner's ``train(cfg)``. Names are imported on first use,
so ``datacull --help`` starts without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.0.0.dev0"

_EXPORTS = {
    "DCDataset": "datacull.data",
    "DCDataLoader": "datacull.data",
    "DCLogger": "datacull.logger",
    "DCImportance": "datacull.importance",
    "ImportanceScores": "datacull.importance",
    "AUMImportance": "datacull.methods.aum",
    "CCSDataLoader": "datacull.methods.ccs",
    "TDDSImportance": "datacull.methods.tdds",
    "TDDSDataLoader": "datacull.methods.tdds",
    "MetriQDataLoader": "datacull.methods.metriq",
    "RS2DataLoader": "datacull.methods.rs2",
    "RCAPImportance": "datacull.methods.rcap",
    "RCAPDataLoader": "datacull.methods.rcap",
    "register_importance": "datacull.registry",
    "register_sampler": "datacull.registry",
    "register_dataset": "datacull.registry",
    "register_model": "datacull.registry",
    "register_optimizer": "datacull.registry",
    "register_scheduler": "datacull.registry",
    "get_importance": "datacull.catalog",
    "get_sampler": "datacull.catalog",
    "create_importance": "datacull.catalog",
    "create_sampler": "datacull.catalog",
    "list_importances": "datacull.catalog",
    "list_samplers": "datacull.catalog",
    "list_datasets": "datacull.catalog",
    "list_models": "datacull.catalog",
    "train": "datacull.runner",
    "load_selection": "datacull.coresets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'datacull' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
