"""Name -> implementation registries for importances, samplers, datasets and models.

Modelled on timm's ``register_model`` / ``create_model`` / ``list_models``: a decorator records an object
under a name, lookups fail with a one-line error that lists the known names, and third-party packages add
their own implementations through entry points (groups ``datacull.importances``, ``datacull.samplers``,
``datacull.datasets``, ``datacull.models``; each entry point names a module or object whose import
registers the implementation).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from .errors import UnknownNameError

KINDS = ("importance", "sampler", "dataset", "model")
ENTRY_POINT_GROUPS = {kind: f"datacull.{kind}s" for kind in KINDS}


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str
    paper: str


_REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_builtins_loaded = False
_plugins_loaded = False


def _first_docstring_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _register(kind: str, name: str) -> Callable[[Any], Any]:
    def decorator(obj: Any) -> Any:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing.obj is not obj:
            raise ValueError(f"{kind} '{name}' is already registered by {existing.obj!r}")
        _REGISTRY[kind][name] = Entry(
            name=name,
            obj=obj,
            description=_first_docstring_line(obj),
            paper=getattr(obj, "paper", "") or "",
        )
        try:
            obj.registry_name = name
        except (AttributeError, TypeError):  # builtins / functions with slots
            pass
        return obj

    return decorator


def register_importance(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a :class:`~datacull.DCImportance` subclass selectable as ``importance=name``."""
    return _register("importance", name)


def register_sampler(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a :class:`~datacull.DCDataLoader` subclass selectable as ``sampler=name``."""
    return _register("sampler", name)


def register_dataset(name: str) -> Callable[[Any], Any]:
    """Function decorator: a loader ``f(cfg) -> ImageData`` selectable as ``dataset=name``."""
    return _register("dataset", name)


def register_model(name: str) -> Callable[[Any], Any]:
    """Class decorator: an ``nn.Module`` built as ``cls(in_channels, image_size, num_classes, **cfg)``."""
    return _register("model", name)


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        importlib.import_module("datacull.methods")
        importlib.import_module("datacull.datasets")
        importlib.import_module("datacull.models")


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for group in ENTRY_POINT_GROUPS.values():
        for entry_point in entry_points(group=group):
            entry_point.load()


def _entries(kind: str) -> dict[str, Entry]:
    _load_builtins()
    _load_plugins()
    return _REGISTRY[kind]


def get_entry(kind: str, name: str) -> Entry:
    entries = _entries(kind)
    if name not in entries:
        known = ", ".join(sorted(entries))
        raise UnknownNameError(f"unknown {kind} '{name}'; known {kind}s: {known}")
    return entries[name]


def list_names(kind: str, pattern: str = "*") -> list[str]:
    return sorted(name for name in _entries(kind) if fnmatch.fnmatch(name, pattern))


def list_entries(kind: str) -> list[Entry]:
    return [entry for _, entry in sorted(_entries(kind).items())]


def get_importance(name: str) -> Any:
    return get_entry("importance", name).obj


def get_sampler(name: str) -> Any:
    return get_entry("sampler", name).obj


def get_dataset(name: str) -> Any:
    return get_entry("dataset", name).obj


def get_model(name: str) -> Any:
    return get_entry("model", name).obj


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
