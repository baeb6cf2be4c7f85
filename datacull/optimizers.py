"""Registered optimizers: ``optimizer=<name>`` builds ``f(model, lr, **cfg)``; each has its conf file."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_optimizer


def parameter_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """Weights (ndim > 1) and norm/bias parameters as two groups, so weight decay can spare the latter."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": float(weight_decay) if decay_norm_and_bias else 0.0},
    ]


@register_optimizer("sgd")
def sgd(
    model: nn.Module,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    decay_norm_and_bias: bool = True,
) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum: the optimizer of every CIFAR recipe in the pruning papers."""
    groups = parameter_groups(model, weight_decay, decay_norm_and_bias)
    return torch.optim.SGD(groups, lr=float(lr), momentum=float(momentum), nesterov=bool(nesterov))


def _adam_family(optimizer_cls, model, lr, betas, weight_decay, decay_norm_and_bias) -> torch.optim.Optimizer:
    groups = parameter_groups(model, weight_decay, decay_norm_and_bias)
    return optimizer_cls(groups, lr=float(lr), betas=tuple(betas))


@register_optimizer("adam")
def adam(model: nn.Module, lr: float, betas=(0.9, 0.999), weight_decay=0.0, decay_norm_and_bias=True):
    """Adam (Kingma & Ba, 2015), weight decay added to the gradient (L2)."""
    return _adam_family(torch.optim.Adam, model, lr, betas, weight_decay, decay_norm_and_bias)


@register_optimizer("adamw")
def adamw(model: nn.Module, lr: float, betas=(0.9, 0.999), weight_decay=0.0, decay_norm_and_bias=True):
    """AdamW (Loshchilov & Hutter, 2019): decoupled weight decay (RCAP's official example uses it)."""
    return _adam_family(torch.optim.AdamW, model, lr, betas, weight_decay, decay_norm_and_bias)
