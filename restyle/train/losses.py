"""The training objective's terms: perceptual losses (Johnson et al. 2016) on VGG features, balanced across layers.

The style and palette terms are the statistics every part of the package
compares images by (``restyle.models.statistics``: Gram matrices, relative
errors, the palette distance, and why every term is relative); this module
adds the content, total-variation and combined terms and re-exports those,
so the objective reads in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from restyle.models.statistics import (
    gram_matrix,
    palette_loss,
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
    "palette_targets",
    "relative_error",
    "style_layer_losses",
    "style_loss",
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
