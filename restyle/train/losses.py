"""Perceptual losses (Johnson et al. 2016) on VGG features, balanced across layers.

Gram matrices are always computed in fp32: under fp16 autocast the sums over
H*W overflow (max 65504) long before the normalisation divides them down.

Why every term is *relative*: on Caffe-scale VGG features the raw Gram MSE of
relu4_1 outweighed relu1_1 by about 6,500x for Starry Night against a typical
photo at 256 px (177 at relu1_1, 4.4e4 at relu2_1, 2.3e4 at relu3_1, 1.15e6 at
relu4_1). Summing raw terms therefore trained relu4_1 texture only: colour and
fine strokes, which live in the low layers, never appeared, and raising the
style weight just added texture until the photo vanished. Dividing each
layer's squared error by the target Gram's own mean square makes every layer
start near 1 (an output whose features are zero scores exactly 1 everywhere),
so the per-layer weights mean what they say; the content term is normalised
the same way by the target features' mean square.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

_EPS = 1e-12


def gram_matrix(feat: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C*H*W so the value does not depend on the image size."""
    n, c, h, w = feat.shape
    f = feat.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def relative_error(x: Tensor, target: Tensor) -> Tensor:
    """Per-sample ``mean((x - target)^2) / mean(target^2)``; ``target`` broadcasts over the batch."""
    x = x.float()
    target = target.float().expand_as(x)
    dims = tuple(range(1, x.dim()))
    return ((x - target) ** 2).mean(dim=dims) / (target**2).mean(dim=dims).clamp_min(_EPS)


def content_loss(feat: Tensor, target: Tensor) -> Tensor:
    """Relative squared feature error, batch mean: 0 for a perfect copy, 1 for all-zero features."""
    return relative_error(feat, target).mean()


def style_layer_losses(feats: Mapping[str, Tensor], target_grams: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Relative Gram error per layer (batch mean). Targets are (1, C, C) or per sample (N, C, C)."""
    return {name: relative_error(gram_matrix(feats[name]), target).mean() for name, target in target_grams.items()}


def style_loss(
    feats: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Weighted sum over layers of :func:`style_layer_losses` (weight 1 for a layer not named)."""
    terms = style_layer_losses(feats, target_grams)
    weights = layer_weights or {}
    total = torch.zeros((), device=next(iter(terms.values())).device)
    for name, value in terms.items():
        total = total + float(weights.get(name, 1.0)) * value
    return total


def total_variation(img: Tensor) -> Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV): suppresses speckle.

    A mean rather than a sum, so the weight means the same at every crop size:
    a natural photo scores about 0.03-0.06, pure noise about 0.33.
    """
    dh = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().mean()
    dw = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().mean()
    return dh + dw


def palette_targets(style_pixels: Tensor, directions: Tensor) -> Tensor:
    """Sorted projections of one style image's pixels, (K, M): the target quantile functions of :func:`palette_loss`.

    ``style_pixels`` is (M, 3) in [0, 1]; ``directions`` is (K, 3), unit rows.
    """
    return torch.sort(style_pixels.float() @ directions.T, dim=0).values.T.contiguous()


def _sliced_w1(proj: Tensor, targets: Tensor) -> Tensor:
    """Mean |quantile difference| per sample: ``proj`` (N, K, P) sorted, ``targets`` (N, K, M) sorted."""
    p, m = proj.shape[-1], targets.shape[-1]
    idx = ((torch.arange(p, device=proj.device) + 0.5) * (m / p)).long().clamp_max(m - 1)
    return (proj - targets[..., idx]).abs().mean(dim=(1, 2))


def palette_loss(y: Tensor, x: Tensor, targets: Tensor, directions: Tensor) -> Tensor:
    """Sliced Wasserstein-1 distance of the output's colours to the style image's, relative to the photo's own.

    The same quantity as the palette distance ``restyle.quality`` scores
    models by (1: as far from the painting's colours as the photo; 0: the
    painting's colour distribution exactly). The Gram losses alone let the
    bundled ``classics`` model settle on a narrow part of each painting's
    palette (Starry Night mostly blue; palette distances 0.52 for The Scream
    and 0.44 for Udnie against the peer's 0.42 and 0.39): a Gram matrix of
    relu1_1 constrains colour only through second moments mixed with edges.
    ``y`` and ``x`` are (N, 3, H, W) outputs and photos; ``targets`` (N, K, M)
    the sorted style projections of each sample's style (:func:`palette_targets`).
    """
    n = y.shape[0]
    proj_y = torch.sort(torch.einsum("nchw,kc->nkhw", y.float(), directions).reshape(n, len(directions), -1)).values
    with torch.no_grad():
        proj_x = torch.sort(torch.einsum("nchw,kc->nkhw", x.float(), directions).reshape(n, len(directions), -1)).values
        photo = _sliced_w1(proj_x, targets).clamp_min(1e-3)
    return (_sliced_w1(proj_y, targets) / photo).mean()


@dataclass
class LossTerms:
    content: Tensor
    style: Tensor
    tv: Tensor
    temporal: Tensor
    total: Tensor
    palette: Tensor | None = None
    pixel: Tensor | None = None  # distillation: mean |student - teacher| in RGB

    def as_floats(self) -> dict[str, float]:
        optional = tuple(k for k in ("palette", "pixel") if getattr(self, k) is not None)
        names = ("content", "style", "tv", "temporal", "total") + optional
        return {k: float(getattr(self, k).detach()) for k in names}
