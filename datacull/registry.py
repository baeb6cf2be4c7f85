"""Name -> implementation registries, kept apart from the implementations (as timm's ``_registry``).

A decorator records an object under a name; :mod:`datacull.catalog` imports the built-ins and third-party entry
points and looks names up. This module imports no implementation, so the plugins can import it freely.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InputError

KINDS = ("importance", "sampler", "dataset", "model", "optimizer", "scheduler")


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str
    paper: str


_REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}


def _first_docstring_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _register(kind: str, name: str) -> Callable[[Any], Any]:
    def decorator(obj: Any) -> Any:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing.obj is not obj:
            raise ValueError(f"{kind} '{name}' is already registered by {existing.obj!r}")
        _REGISTRY[kind][name] = Entry(name, obj, _first_docstring_line(obj), getattr(obj, "paper", "") or "")
        return obj

    return decorator


def register_importance(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a :class:`~datacull.DCImportance` subclass selectable as ``importance=name``."""
    return _register("importance", name)


def register_sampler(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a :class:`~datacull.DCDataLoader` subclass selectable as ``sampler=name``."""
    return _register("sampler", name)


def register_dataset(name: str) -> Callable[[Any], Any]:
    """Function decorator: a loader ``f(cfg, cache_dir) -> ImageData`` selectable as ``dataset=name``."""
    return _register("dataset", name)


def register_model(name: str) -> Callable[[Any], Any]:
    """Class decorator: an ``nn.Module`` built as ``cls(in_channels, image_size, num_classes, **cfg)``."""
    return _register("model", name)


def register_optimizer(name: str) -> Callable[[Any], Any]:
    """Function decorator: ``f(model, lr, **cfg) -> torch.optim.Optimizer`` selectable as ``optimizer=name``."""
    return _register("optimizer", name)


def register_scheduler(name: str) -> Callable[[Any], Any]:
    """Function decorator: ``f(epochs, **cfg) -> factor(progress)`` selectable as ``scheduler=name``."""
    return _register("scheduler", name)


def registered(kind: str) -> dict[str, Entry]:
    """What is registered under ``kind`` so far (without loading anything; see :mod:`datacull.catalog`)."""
    return _REGISTRY[kind]


def import_target(path: str, key: str = "_target_") -> Any:
    """The object at the dotted import path ``pkg.module.Name`` that the setting ``key`` gives, or a one-line
    error naming what failed."""
    module_name, _, name = str(path).rpartition(".")
    if not module_name:
        raise InputError(f"{key}={path!r} must be a dotted import path such as mypackage.module.Name")
    try:
        return getattr(importlib.import_module(module_name), name)
    except ImportError as error:
        raise InputError(f"{key}={path}: cannot import {module_name} ({error})") from None
    except AttributeError:
        raise InputError(f"{key}={path}: {module_name} has no {name}") from None
