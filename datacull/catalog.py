"""Every implementation by name: the built-ins (imported here, which registers them) and third-party plugins.

Third-party packages register theirs through entry points in the groups ``datacull.importances``,
``datacull.samplers``, ``datacull.datasets``, ``datacull.models``, ``datacull.optimizers`` and
``datacull.schedulers``; each entry point names a module or object whose import registers the implementation.
Lookups fail with a one-line error that lists the known names.
"""

from __future__ import annotations

import fnmatch
from importlib.metadata import entry_points
from typing import Any

from . import datasets, methods, models, optimizers, schedules  # noqa: F401  (importing registers them)
from .errors import UnknownNameError
from .registry import KINDS, Entry, registered

ENTRY_POINT_GROUPS = {kind: f"datacull.{kind}s" for kind in KINDS}
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for group in ENTRY_POINT_GROUPS.values():
        for entry_point in entry_points(group=group):
            entry_point.load()


def entries(kind: str) -> dict[str, Entry]:
    _load_plugins()
    return registered(kind)


def get_entry(kind: str, name: str) -> Entry:
    known = entries(kind)
    if name not in known:
        raise UnknownNameError(f"unknown {kind} '{name}'; known {kind}s: {', '.join(sorted(known))}")
    return known[name]


def list_names(kind: str, pattern: str = "*") -> list[str]:
    return sorted(name for name in entries(kind) if fnmatch.fnmatch(name, pattern))


def list_entries(kind: str) -> list[Entry]:
    return [entry for _, entry in sorted(entries(kind).items())]


def get_importance(name: str) -> Any:
    return get_entry("importance", name).obj


def get_sampler(name: str) -> Any:
    return get_entry("sampler", name).obj


def get_dataset(name: str) -> Any:
    return get_entry("dataset", name).obj


def get_model(name: str) -> Any:
    return get_entry("model", name).obj


def get_optimizer(name: str) -> Any:
    return get_entry("optimizer", name).obj


def get_scheduler(name: str) -> Any:
    return get_entry("scheduler", name).obj


def list_importances(pattern: str = "*") -> list[str]:
    return list_names("importance", pattern)


def list_samplers(pattern: str = "*") -> list[str]:
    return list_names("sampler", pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return list_names("dataset", pattern)


def list_models(pattern: str = "*") -> list[str]:
    return list_names("model", pattern)


def create_importance(name: str, **kwargs: Any) -> Any:
    return get_importance(name)(**kwargs)


def create_sampler(name: str, **kwargs: Any) -> Any:
    return get_sampler(name)(**kwargs)
