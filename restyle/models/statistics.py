"""What stylized images are compared by: Gram matrices, relative errors and the palette distance.

One module for the statistics that training (``restyle.train.losses``), the
video metrics (``restyle.video.metrics``), the quality scores
(``restyle.quality``) and the reference suite (``restyle.reference.losses``)
all measure style with, so each is defined once and every layer above the
models can import it.

Why the style terms are *relative*: on Caffe-scale VGG features the raw Gram
MSE of relu4_1 outweighed relu1_1 by about 6,500x for Starry Night against a
typical photo at 256 px (177 at relu1_1, 4.4e4 at relu2_1, 2.3e4 at relu3_1,
1.15e6 at relu4_1). Summing raw terms therefore trained relu4_1 texture only:
colour and fine strokes, which live in the low layers, never appeared, and
raising the style weight just added texture until the photo vanished.
Dividing each layer's squared error by the target Gram's own mean square
makes every layer start near 1 (an output whose features are zero scores
exactly 1 everywhere), so the per-layer weights mean what they say.

Gram matrices are always computed in fp32: under fp16 autocast the sums over
H*W overflow (max 65504) long before the normalisation divides them down.

**The palette distance** is the sliced Wasserstein-1 distance between two
colour distributions (RGB pixels projected on unit directions, where the
1-D distance is the mean absolute difference of the quantile functions),
divided by the same distance for the unstylized photo: 1 means as far from
the painting's colours as the photo was, 0 the painting's colour
distribution exactly. It has two estimators here, for two jobs:

* :func:`palette_loss`, training's: differentiable and cheap at every step
  (PyTorch sort, the run's own seeded directions, every output pixel
  against the nearest-rank quantile of the style's sorted pixels);
* :func:`sliced_wasserstein`, the score's (``restyle.quality``, the model
  cards, ``docs/quality.md``): float64, 64 directions from a fixed seed and
  1024 interpolated quantiles of both images, so numbers compare across
  image sizes, runs and models, and stay the numbers already published.

With the same directions the two agree to within 0.001 (the bundled photo
against Starry Night at 64 to 256 px; ``tests/test_quality.py`` checks it).
A training run's own 32 directions differ from the score's by up to about
20% (a grey output: 1.32 to 1.74 by seed, the score 1.61): the sampling
error of few directions, harmless for a loss that only has to point the
right way, and the reason the score uses its 64 fixed ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-12
SCORE_PROJECTIONS = 64  # directions of the palette score (sliced_wasserstein)
SCORE_QUANTILES = 1024  # quantiles of the palette score


def gram_matrix(feat: Tensor, weights: Tensor | None = None) -> Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C*H*W so the value does not depend on the image size.

    ``weights`` (N or 1, 1, H', W'), resized to the features by area, weigh each position (a style target with its
    bare ground counted less: ``restyle.train.ground``); the normaliser is then C times their sum, so all ones give
    the unweighted Gram.
    """
    n, c, h, w = feat.shape
    f = feat.float().reshape(n, c, h * w)
    if weights is None:
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)
    wt = F.interpolate(weights.float(), size=(h, w), mode="area").reshape(-1, 1, h * w)
    return torch.bmm(f * wt, f.transpose(1, 2)) / (c * wt.sum(dim=2, keepdim=True))


def relative_error(x: Tensor, target: Tensor) -> Tensor:
    """Per-sample ``mean((x - target)^2) / mean(target^2)``; ``target`` broadcasts over the batch."""
    x = x.float()
    target = target.float().expand_as(x)
    dims = tuple(range(1, x.dim()))
    return ((x - target) ** 2).mean(dim=dims) / (target**2).mean(dim=dims).clamp_min(_EPS)


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


# -- the palette distance ----------------------------------------------------------------------------------------
def palette_targets(style_pixels: Tensor, directions: Tensor) -> Tensor:
    """Sorted projections of one style image's pixels, (K, M): the target quantile functions of :func:`palette_loss`.

    ``style_pixels`` is (M, 3) in [0, 1]; ``directions`` is (K, 3), unit rows.
    """
    return torch.sort(style_pixels.float() @ directions.T, dim=0).values.T.contiguous()


def sliced_w1(proj: Tensor, targets: Tensor) -> Tensor:
    """Mean |quantile difference| per sample: ``proj`` (N, K, P) sorted, ``targets`` (N, K, M) sorted."""
    p, m = proj.shape[-1], targets.shape[-1]
    idx = ((torch.arange(p, device=proj.device) + 0.5) * (m / p)).long().clamp_max(m - 1)
    return (proj - targets[..., idx]).abs().mean(dim=(1, 2))


def palette_loss(y: Tensor, x: Tensor, targets: Tensor, directions: Tensor, pixels: Tensor | None = None) -> Tensor:
    """Sliced Wasserstein-1 distance of the output's colours to the style image's, relative to the photo's own.

    The palette distance (1: as far from the painting's colours as the
    photo; 0: the painting's colour distribution exactly), as training
    estimates it; :func:`sliced_wasserstein` is the score's estimator of the
    same quantity. The Gram losses alone let the bundled ``classics`` model
    settle on a narrow part of each painting's palette (Starry Night mostly
    blue; palette distances 0.52 for The Scream and 0.44 for Udnie against
    the peer's 0.42 and 0.39): a Gram matrix of relu1_1 constrains colour
    only through second moments mixed with edges.
    ``y`` and ``x`` are (N, 3, H, W) outputs and photos; ``targets`` (N, K, M)
    the sorted style projections of each sample's style (:func:`palette_targets`).
    ``pixels`` (P,) flat pixel indices: both the output and the photo are measured on those pixels only (the same
    for every sample). Sorting every pixel of a 4 x 128 x 128 batch along 32 directions takes about 0.2 s of a 0.85 s
    step on a 2-core CPU; a fresh random quarter of them each step (:func:`palette_pixels`) costs a quarter of that,
    and the estimate of the same distance stays unbiased.
    """
    n = y.shape[0]

    def projections(img: Tensor) -> Tensor:
        flat = img.float().reshape(n, img.shape[1], -1)
        if pixels is not None:
            flat = flat[:, :, pixels]
        return torch.sort(torch.einsum("ncp,kc->nkp", flat, directions)).values

    proj_y = projections(y)
    with torch.no_grad():
        proj_x = projections(x)
        photo = sliced_w1(proj_x, targets).clamp_min(1e-3)
    return (sliced_w1(proj_y, targets) / photo).mean()


def palette_pixels(height: int, width: int, count: int, seed: int, device: torch.device | None = None) -> Tensor:
    """``count`` distinct flat pixel indices of a ``height`` x ``width`` image, a deterministic function of ``seed``
    (the training step: a resumed run measures the same pixels); every pixel when ``count`` is 0 or covers them."""
    total = height * width
    if count <= 0 or count >= total:
        return torch.arange(total, device=device)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=gen)[:count].to(device)


def score_directions(projections: int = SCORE_PROJECTIONS, channels: int = 3) -> np.ndarray:
    """The palette score's fixed unit directions, (projections, channels): seed 0, so values compare across runs."""
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(projections, channels))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return dirs


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, projections: int = SCORE_PROJECTIONS, quantiles: int = SCORE_QUANTILES
) -> float:
    """Sliced 1-Wasserstein distance between two colour distributions, pixels as rows (..., 3).

    Each random direction (:func:`score_directions`: a fixed seed, so values
    are comparable across runs) projects both clouds to 1-D, where the
    distance is the mean absolute difference of their quantile functions.
    """
    return quantile_distance(
        projected_quantiles(a, projections, quantiles), projected_quantiles(b, projections, quantiles)
    )


def projected_quantiles(
    x: np.ndarray, projections: int = SCORE_PROJECTIONS, quantiles: int = SCORE_QUANTILES
) -> np.ndarray:
    """The (projections, quantiles) quantile functions of ``x``'s pixels along the score's fixed directions.

    Computed once per image, so a scorer keeps the style image's and compares every output against it.
    Equal to ``np.quantile(x @ dirs.T, q, axis=0).T`` (its default linear method), from one sort per
    direction: measured on this 2-core CPU for a 512x342 image, ``np.quantile`` with 1024 quantiles took
    22 s per call, the projection as ``dirs @ x.T`` and a row-wise sort of the contiguous result a few.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    dirs = score_directions(projections, x.shape[1])
    s = np.sort(dirs @ x.T, axis=1)
    pos = (np.arange(quantiles) + 0.5) / quantiles * (s.shape[1] - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, s.shape[1] - 1)
    return s[:, lo] + (s[:, hi] - s[:, lo]) * (pos - lo)


def quantile_distance(qa: np.ndarray, qb: np.ndarray) -> float:
    """The sliced distance between two :func:`projected_quantiles` results."""
    return float(np.abs(qa - qb).mean())
