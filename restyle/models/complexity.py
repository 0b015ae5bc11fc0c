"""Multiply-accumulates per pixel and parameter counts, by tracing real shapes.

Counting with forward hooks on a real forward pass (rather than by formula)
keeps the numbers right when an architecture changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Complexity:
    macs_per_pixel: float
    parameters: int


def complexity(net: nn.Module, size: int = 256) -> Complexity:
    """MACs per input pixel of conv and linear layers, measured at ``size`` x ``size``."""
    total = 0

    def hook(module: nn.Module, _inp, out) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += out.numel() * k
        elif isinstance(module, nn.Linear):
            total += out.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in net.parameters())
    return Complexity(macs_per_pixel=total / (size * size), parameters=params)
