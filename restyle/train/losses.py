"""The training objective's terms: perceptual losses (Johnson et al. 2016) on VGG features, balanced across layers.

The style and palette terms are the statistics every part of the package
compares images by (``restyle.models.statistics``: Gram matrices, relative
errors, the palette distance, and why every term is relative); this module
adds the content, total-variation and combined terms and re-exports those,
so the objective reads in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from restyle.models.statistics import (
    gram_matrix,
    palette_loss,
    palette_pixels,
    palette_targets,
    relative_error,
    style_layer_losses,
    style_loss,
)

__all__ = [
    "LossTerms",
    "content_loss",
    "gram_matrix",
    "palette_loss",
    "palette_pixels",
    "palette_targets",
    "relative_error",
    "style_layer_losses",
    "style_loss",
    "tone_loss",
    "total_variation",
]


def content_loss(feat: Tensor, target: Tensor) -> Tensor:
    """Relative squared feature error, batch mean: 0 for a perfect copy, 1 for all-zero features."""
    return relative_error(feat, target).mean()


def total_variation(img: Tensor) -> Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV): suppresses speckle.

    A mean rather than a sum, so the weight means the same at every crop size:
    a natural photo scores about 0.03-0.06, pure noise about 0.33.
    """
    dh = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().mean()
    dw = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().mean()
    return dh + dw


_LUMA = (0.299, 0.587, 0.114)  # Rec. 601


def _tones(img: Tensor, factor: int) -> Tensor:
    """Luminance averaged over ``factor`` x ``factor`` blocks, less its mean: where the picture is dark and where
    light, at the scale of objects."""
    luma = (img * torch.tensor(_LUMA, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    low = F.avg_pool2d(luma, factor)
    return low - low.mean((2, 3), keepdim=True)


def tone_loss(output: Tensor, photo: Tensor, factor: int = 8) -> Tensor:
    """The photo's tonal layout lost by the output, relative to the photo's own tonal contrast, batch mean.

    0 keeps the layout (any overall brightness: the palette sets it); 1 is a flat output, the photo faded away.
    Why: on a study on bare paper the Gram and palette targets ask for mostly paper, and relu4_2 content lets the
    photo's objects fade into it (``bench/new_style_tone.py`` measures that on the protocol's outputs).
    """
    want = _tones(photo.float(), factor)
    err = (_tones(output.float(), factor) - want).pow(2).mean((1, 2, 3))
    return (err / want.pow(2).mean((1, 2, 3)).clamp_min(1e-6)).mean()


@dataclass
class LossTerms:
    content: Tensor
    style: Tensor
    tv: Tensor
    temporal: Tensor
    total: Tensor
    palette: Tensor | None = None
    pixel: Tensor | None = None  # distillation: mean |student - teacher| in RGB
    tone: Tensor | None = None  # tone_weight > 0: the photo's tonal layout lost

    def as_floats(self) -> dict[str, float]:
        optional = tuple(k for k in ("palette", "pixel", "tone") if getattr(self, k) is not None)
        names = ("content", "style", "tv", "temporal", "total") + optional
        return {k: float(getattr(self, k).detach()) for k in names}
