"""Your own model and the common zoos, as ``model=custom``, ``model=torchvision`` and ``model=timm``.

- ``model=custom model._target_=pkg.module.Class`` builds any ``nn.Module`` by its import path, further arguments as
  ``+model.<name>=<value>`` (Hydra's ``_target_`` convention). The data set supplies what the constructor asks for
  by name and was not given: ``num_classes``, ``in_channels``, ``image_size`` (``(H, W)``), ``input_shape``
  (one input's shape: ``(C, H, W)`` for images, ``(features,)`` for a table's rows, ...).
- ``model=torchvision model.arch=resnet50`` and ``model=timm model.arch=<name>`` (timm is an optional extra), with
  no weights unless ``model.pretrained=true`` (which downloads them: offline runs leave it false).

Per-sample embeddings (gradient-norm scores, fp32 logits under AMP) come from the input of the model's final linear
layer: :func:`final_linear` finds it (``head``, ``fc``, ``classifier``, timm's ``get_classifier()``, else the last
``nn.Linear``), or ``model.feature_layer=<module path>`` names it.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..errors import InputError
from ..registry import import_target, register_model

#: What the data set gives a constructor that asks for it by name.
PROVIDED = ("num_classes", "in_channels", "image_size", "input_shape")


def provided_arguments(target: Any, given: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The constructor's arguments: ``given``, plus each of :data:`PROVIDED` that its signature names (or accepts
    through ``**kwargs`` only when named) and ``given`` lacks."""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return dict(given)
    return {**{key: value for key, value in data.items() if key in parameters and key not in given}, **given}


@register_model("custom")
def custom(
    in_channels: int | None,
    image_size: tuple[int, int] | None,
    num_classes: int,
    input_shape: tuple[int, ...] | None = None,
    _target_: str | None = None,
    feature_layer: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Your own nn.Module by import path: model._target_=pkg.module.Class, extra arguments as +model.<name>=...

    The data set supplies ``num_classes``, ``in_channels``, ``image_size`` and ``input_shape`` when the constructor
    asks for them by name (``in_channels`` and ``image_size`` are None for inputs that are not ``(C, H, W)``)."""
    if not _target_:
        raise InputError("model=custom needs model._target_=<package.module.Class> (your nn.Module)")
    target = import_target(_target_, "model._target_")
    if input_shape is None and image_size is not None:
        input_shape = (in_channels, *image_size)
    data = {
        "num_classes": num_classes,
        "in_channels": in_channels,
        "image_size": None if image_size is None else tuple(image_size),
        "input_shape": input_shape,
    }
    model = target(**provided_arguments(target, kwargs, data))
    if not isinstance(model, nn.Module):
        raise InputError(f"model._target_={_target_} built a {type(model).__name__}, not a torch.nn.Module")
    return model


@register_model("torchvision")
def torchvision_model(
    in_channels: int,
    image_size: tuple[int, int],
    num_classes: int,
    arch: str = "resnet18",
    pretrained: bool = False,
    feature_layer: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A torchvision classification model by name: model.arch=resnet50; no weights unless model.pretrained=true.

    ``torchvision.models.get_model``; with pretrained weights the final layer is replaced for ``num_classes``."""
    from torchvision import models

    if arch not in models.list_models(module=models):
        raise InputError(
            f"model.arch={arch} is not a torchvision classification model; e.g. resnet18, resnet50, vit_b_16"
        )
    if in_channels != 3:
        raise InputError(
            f"model=torchvision takes 3-channel images; the data set has {in_channels} channel(s)"
        )
    if not pretrained:
        return models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    model = models.get_model(arch, weights="DEFAULT", **kwargs)
    head = final_linear(model, feature_layer)
    if head.out_features != num_classes:
        replace_module(model, _module_name(model, head), nn.Linear(head.in_features, num_classes))
    return model


@register_model("timm")
def timm_model(in_channels: int, image_size: tuple[int, int], num_classes: int, **settings: Any) -> nn.Module:
    """A timm model by name: model.arch=<name> (pip install "datacull[timm]"); no weights unless pretrained.

    ``timm.create_model`` with the data set's classes and channels; ``feature_layer`` is the engine's."""
    try:
        import timm
    except ImportError:
        raise InputError('model=timm needs timm: pip install "datacull[timm]"') from None
    settings.pop("feature_layer", None)
    arch, pretrained = settings.pop("arch", "resnet18"), bool(settings.pop("pretrained", False))
    if arch not in timm.list_models():
        raise InputError(f"model.arch={arch} is not a timm model; `timm.list_models('*resnet*')` lists some")
    return timm.create_model(
        arch, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels, **settings
    )


def final_linear(model: nn.Module, name: str | None = None, num_classes: int | None = None) -> nn.Linear:
    """The model's final linear layer, whose input is the per-sample embedding: ``name`` (a module path such as
    ``classifier.1``) when given, else ``head``, ``fc``, ``classifier`` (or its last linear layer), timm's
    ``get_classifier()``, else the last ``nn.Linear`` the model holds; with ``num_classes``, only a layer with that
    many outputs (a hidden layer or an attention projection is never taken for the classifier)."""
    if name:
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise InputError(f"model.feature_layer={name}: the model has no module of that name") from None
        if not isinstance(layer, nn.Linear):
            raise InputError(f"model.feature_layer={name} is a {type(layer).__name__}, not an nn.Linear")
        return layer
    candidates = [getattr(model, attribute, None) for attribute in ("head", "fc", "classifier")]
    if callable(getattr(model, "get_classifier", None)):
        candidates.append(model.get_classifier())

    def classifies(layer: Any) -> bool:
        return isinstance(layer, nn.Linear) and (num_classes is None or layer.out_features == num_classes)

    for candidate in candidates:
        if isinstance(candidate, nn.Sequential):
            candidate = next((m for m in reversed(candidate) if isinstance(m, nn.Linear)), None)
        if classifies(candidate):
            return candidate
    linears = [module for module in model.modules() if classifies(module)]
    if not linears:
        outputs = "" if num_classes is None else f" with {num_classes} outputs (one per class)"
        raise InputError(
            f"{type(model).__name__} has no nn.Linear layer{outputs} to take per-sample embeddings from: set "
            "model.feature_layer=<module path of its final linear layer>"
        )
    return linears[-1]


def _module_name(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, candidate in model.named_modules() if candidate is module)


def replace_module(model: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, replacement)
