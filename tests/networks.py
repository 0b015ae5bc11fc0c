"""Small networks for tests: a multi-style network whose styles really differ."""

from __future__ import annotations

import torch

from restyle.models.transformer import StyleNet, build_network
from restyle.train.add_style import is_norm_parameter


def distinct_styles(arch: str = "fast", styles: int = 3, scale: float = 1.0, seed: int = 0) -> StyleNet:
    """A seeded ``arch`` network with ``styles`` styles whose norm scales and shifts are randomly apart."""
    torch.manual_seed(seed)
    net = build_network(arch, styles)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if is_norm_parameter(name):
                p.add_(scale * torch.randn_like(p))
    return net
