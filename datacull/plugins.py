"""Methods and models without a YAML file: their config comes from their registration.

A sampler, importance, model or dataset registered by a third-party package (an entry point, see
:mod:`datacull.catalog`) or by a user's own module needs only its Python file: when ``conf/<group>/`` holds no file
of its name, its config node is made from its constructor's signature (``name`` plus every parameter with a
default of a plain type; a parameter without a default must be given, as ``???``), and stored in Hydra's
ConfigStore under the same group, so ``datacull train sampler=<name> sampler.<parameter>=<value>`` works as for a
built-in.
"""

from __future__ import annotations

import inspect
from typing import Any

from .paths import config_groups

#: Config groups whose options come from the registry.
KINDS = ("importance", "sampler", "model", "dataset")
#: Constructor parameters the runner supplies itself: never config keys.
SUPPLIED = {
    "self",
    "dataset",
    "logger_object",
    "in_channels",
    "image_size",
    "input_shape",
    "num_classes",
    "seed",
    "num_epochs",
}
PLAIN = (bool, int, float, str, type(None))


def node_from_signature(obj: Any, name: str, kind: str) -> dict[str, Any]:
    """The config node of a registered ``obj``: ``name`` and its constructor's parameters with plain defaults."""
    node: dict[str, Any] = {"name": name}
    if kind == "dataset":  # a loader(cfg, cache_dir) reads what it wants from its section
        return node
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return node
    for parameter in parameters:
        if (
            parameter.name in SUPPLIED
            or parameter.name.endswith("_logger")
            or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ):
            continue
        if parameter.default is parameter.empty:
            node[parameter.name] = 0.5 if (kind, parameter.name) == ("sampler", "pruning_rate") else "???"
        elif isinstance(parameter.default, PLAIN):
            node[parameter.name] = parameter.default
    if kind == "sampler":  # the runner reads these of every sampler, whatever its constructor names
        node.setdefault("pruning_rate", 0.5)
        if not getattr(obj, "static", False):
            node.setdefault("resample_every", 1)
    return node


def generated_options() -> dict[str, dict[str, dict[str, Any]]]:
    """``{group: {name: node}}`` for every registered implementation without a YAML file of its name."""
    from .catalog import entries

    files = config_groups()
    generated: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in KINDS:
        for name, entry in entries(kind).items():
            if name not in files.get(kind, []):
                generated.setdefault(kind, {})[name] = node_from_signature(entry.obj, name, kind)
    return generated


def register_with_hydra() -> dict[str, list[str]]:
    """Store the generated nodes in Hydra's ConfigStore; returns every group's options, files and generated."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    options = {group: list(names) for group, names in config_groups().items()}
    for kind, nodes in generated_options().items():
        for name, node in nodes.items():
            store.store(group=kind, name=name, node=node)
            options.setdefault(kind, []).append(name)
    return {group: sorted(names) for group, names in options.items()}
