"""Losses of the optimization-based methods: Gram distance, feature content loss, the TV image prior.

Kept deliberately small: these are the textbook definitions (Gatys et al.
2015/2016, Mahendran & Vedaldi 2015). The Gram matrix is the one training
uses (``restyle.models.statistics.gram_matrix``), so both halves of the
product measure style alike. Names differ from the training losses where
the definitions differ: ``gram_distance`` takes Gram matrices and averages
layers (training's ``style_loss`` takes features and weights layers), and
``tv_prior`` is the squared-gradient prior (training's ``total_variation``
is the mean absolute difference).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from restyle.models.statistics import gram_matrix
from restyle.runtime.processing import preserve_color

__all__ = ["content_loss", "gram_distance", "gram_matrix", "psnr", "transfer_luminance", "tv_prior"]


def relative_mse(x: Tensor, target: Tensor) -> Tensor:
    """Squared error relative to the target's energy: 1.0 means "as far off as predicting zeros".

    Gatys' raw sums depend on image size, layer width and the weights' input
    scale (Caffe's 0..255), so their loss weights must be retuned per setting;
    relative errors keep one set of default weights meaningful everywhere.
    """
    target = target.expand_as(x)
    return F.mse_loss(x, target) / target.pow(2).mean().clamp_min(1e-12)


def gram_distance(grams: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """Mean over layers of the relative Gram difference (equal layer weights, as in Gatys 2016)."""
    return sum(relative_mse(grams[k], targets[k]) for k in targets) / len(targets)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Relative feature reconstruction error (Gatys 2016 content loss, Mahendran & Vedaldi's normalized loss)."""
    return relative_mse(features, target)


def tv_prior(x: Tensor, beta: float = 2.0) -> Tensor:
    """Mean of (dx^2 + dy^2)^(beta/2): the natural-image prior of Mahendran & Vedaldi (beta=2 is smooth)."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx.pow(2) + dy.pow(2) + 1e-8).pow(beta / 2).mean()


def psnr(a: Tensor, b: Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def transfer_luminance(stylized: Tensor, content: Tensor) -> Tensor:
    """Keep the stylized luminance and the content's colour (Gatys et al. 2016, 'preserving color').

    The product's one colour-preservation step, ``runtime.processing.preserve_color``
    (BT.601 YCbCr), applied to each image of the NCHW batch, so the reference
    suite and the feed-forward runtime keep colours identically.
    """
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    content = content.expand_as(stylized)
    hwc = lambda t: t.detach().permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)  # noqa: E731
    out = np.stack([preserve_color(s, c) for s, c in zip(hwc(stylized), hwc(content), strict=True)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(stylized)
