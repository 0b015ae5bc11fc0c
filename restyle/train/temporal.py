"""A temporal-consistency loss that needs no video (Huang et al. 2017; ReCoNet, Gao et al. 2018).

Consecutive video frames differ by small motions and sensor noise. If the
network commutes with such changes (stylize-then-shift equals
shift-then-stylize, and noise does not change the output), per-frame
stylization stops flickering. We simulate the change with a small random
sub-pixel affine warp plus Gaussian noise on the training crops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def random_warp(n: int, seed: int, device: torch.device, max_shift: float = 0.03, max_rot_deg: float = 2.0) -> Tensor:
    """(N, 2, 3) affine matrices for ``F.affine_grid``: shifts up to ``max_shift`` of the size, small rotations."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 3, generator=g) * 2 - 1
    angle = u[:, 0] * math.radians(max_rot_deg)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.cos(angle)
    theta[:, 0, 1] = -torch.sin(angle)
    theta[:, 1, 0] = torch.sin(angle)
    theta[:, 1, 1] = torch.cos(angle)
    theta[:, :, 2] = u[:, 1:] * max_shift * 2
    return theta.to(device)


def warp(img: Tensor, theta: Tensor) -> Tensor:
    grid = F.affine_grid(theta.to(img.dtype), list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def temporal_loss(model: nn.Module, x: Tensor, y: Tensor, style: Tensor, seed: int, noise: float = 0.02) -> Tensor:
    """MSE between stylize(warp(x) + noise) and warp(stylize(x)), ignoring a border the warp invents."""
    theta = random_warp(x.shape[0], seed, x.device)
    g = torch.Generator(device="cpu").manual_seed(seed + 1)
    eps = (torch.randn(x.shape, generator=g) * noise).to(device=x.device, dtype=x.dtype)
    x2 = (warp(x, theta) + eps).clamp(0, 1)
    y2 = model(x2, style)
    target = warp(y, theta)
    b = max(1, int(0.06 * min(x.shape[2:])))
    return F.mse_loss(y2[:, :, b:-b, b:-b].float(), target[:, :, b:-b, b:-b].float())
