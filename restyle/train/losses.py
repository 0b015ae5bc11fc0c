"""Perceptual losses (Johnson et al. 2016) on VGG features.

Gram matrices are always computed in fp32: under fp16 autocast the sums over
H*W overflow (max 65504) long before the normalisation divides them down.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def gram_matrix(feat: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C*H*W so layers of any size weigh alike."""
    n, c, h, w = feat.shape
    f = feat.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def content_loss(feat: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(feat.float(), target.float())


def style_loss(feats: dict[str, Tensor], target_grams: dict[str, Tensor]) -> Tensor:
    """Sum over layers of the MSE between Gram matrices; targets broadcast over the batch."""
    total = torch.zeros((), device=next(iter(feats.values())).device)
    for name, target in target_grams.items():
        g = gram_matrix(feats[name])
        total = total + F.mse_loss(g, target.expand_as(g))
    return total


def total_variation(img: Tensor) -> Tensor:
    """Anisotropic TV (sum of absolute neighbour differences, per image): suppresses high-frequency noise."""
    dh = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().sum()
    dw = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum()
    return (dh + dw) / img.shape[0]


@dataclass
class LossTerms:
    content: Tensor
    style: Tensor
    tv: Tensor
    temporal: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("content", "style", "tv", "temporal", "total")}
