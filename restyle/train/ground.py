"""A painting's bare ground (untouched paper, a flat backdrop): found, and capped in its style targets.

Why: a Gram target is a mean over every position of the painting, so a
study on mostly bare paper (Dürer's *Young Hare*, a natural-history plate:
66 to 86 % of the sheet within a few CIELAB units of one colour, against at
most 52 % for every other painting of the new-style protocol) asks every
training crop to be that much paper. A feed-forward network, whose instance
norms take away each photo's own brightness, can only meet that by painting
paper over the photo: on the protocol's three such studies the new style
turned statues and tufa towers into cream paper with a few strokes where
their edges were, while the peer kept them. Counting the ground for at most
``ground_cap`` of the statistics (``TrainConfig.ground_cap``; the Gram targets through
``restyle.models.statistics.gram_matrix``'s weights, the palette through :func:`weighted_pixels`) leaves the
painting's strokes and colours as they are and asks for less paper.

The ground is the painting's most common colour (the mode of an 8-unit CIELAB
histogram after a light blur) and every pixel within ``RADIUS`` of it. A
painting with no such colour has a small ground share, below any cap, and
its targets do not change.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

BIN = 8.0  # CIELAB units per histogram bin, about the just-noticeable difference times 3
RADIUS = 10.0  # CIELAB distance (Delta E 1976) from the mode that still counts as ground
_LAB_LOW = np.array([0.0, -128.0, -128.0], dtype=np.float32)


def ground_mask(image: np.ndarray) -> np.ndarray:
    """``HxW`` bool: the pixels of ``image`` (``HxWx3`` float RGB in [0, 1]) within ``RADIUS`` of its most common
    colour."""
    blurred = cv2.GaussianBlur(np.ascontiguousarray(image, dtype=np.float32), (5, 5), 1.0)
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    bins, counts = np.unique(np.floor((lab - _LAB_LOW) / BIN).astype(np.int32), axis=0, return_counts=True)
    mode = (bins[counts.argmax()] + 0.5) * BIN + _LAB_LOW
    return (np.linalg.norm(lab - mode, axis=1) < RADIUS).reshape(image.shape[:2])


def ground_weight(share: float, cap: float) -> float:
    """The weight of each ground pixel that makes the ground ``cap`` of the weighted total (1 when it is less)."""
    if share <= cap or share >= 1.0:
        return 1.0
    return cap * (1.0 - share) / (share * (1.0 - cap))


def position_weights(image: Tensor, cap: float) -> tuple[Tensor | None, float]:
    """Per-pixel weights ``(1, 1, H, W)`` for a style image ``(1, 3, H, W)`` and its ground share; ``None`` when the
    ground is at most ``cap`` (every pixel weighs 1)."""
    mask = ground_mask(image[0].permute(1, 2, 0).cpu().numpy())
    share = float(mask.mean())
    alpha = ground_weight(share, cap)
    if alpha == 1.0:
        return None, share
    weights = np.where(mask, alpha, 1.0).astype(np.float32)
    return torch.from_numpy(weights)[None, None].to(image.device), share


def weighted_pixels(image: Tensor, weights: Tensor | None) -> Tensor:
    """The image's pixels ``(M, 3)`` with the ground thinned to its weight (every k-th ground pixel kept, in
    order), the sample the palette target's quantiles are taken from."""
    pixels = image[0].reshape(3, -1).T
    if weights is None:
        return pixels
    w = weights.reshape(-1)
    ground = torch.nonzero(w < 1.0).squeeze(1)
    stride = max(1, round(1.0 / float(w[ground[0]])))
    keep = torch.cat([torch.nonzero(w >= 1.0).squeeze(1), ground[::stride]]).sort().values
    return pixels[keep]
