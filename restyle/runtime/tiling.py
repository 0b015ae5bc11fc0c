"""Overlapping tiles with feathered blending, for photos too large for one forward pass.

Geometry: square-ish windows of ``tile`` network pixels, starts on the
network's stride grid (so every tile sees the same down/up-sampling phase as
the whole image would), neighbours overlapping by at least ``overlap``.
Blending weights ramp from 0 to 1 across the overlap, after a ``dead`` band
at each inner edge where the tile's own reflect padding distorts the result;
the image borders get full weight. Weights are normalised by their sum, so
any overlap geometry blends to a partition of unity: no seams, no gain change.
Colour consistency across tiles comes from shared instance-norm statistics
(``restyle.runtime.thumbnail_norm``), not from blending.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 192
DEAD_BAND = 32


@dataclass(frozen=True)
class Window:
    y0: int
    y1: int
    x0: int
    x1: int


def spans(length: int, tile: int, overlap: int, stride: int) -> list[tuple[int, int]]:
    """Start/end pairs covering ``[0, length)``; starts are stride multiples."""
    if length <= tile:
        return [(0, length)]
    step = tile - overlap
    count = -(-(length - overlap) // step)
    last = (length - tile) // stride * stride
    starts = sorted({min(last, round(i * last / (count - 1) / stride) * stride) for i in range(count)})
    result = [(s, min(length, s + tile)) for s in starts]
    result[-1] = (result[-1][0], length)
    return result


def plan(height: int, width: int, tile: int, overlap: int, stride: int) -> list[Window]:
    return [
        Window(y0, y1, x0, x1)
        for y0, y1 in spans(height, tile, overlap, stride)
        for x0, x1 in spans(width, tile, overlap, stride)
    ]


def ramp(start: int, end: int, length: int, overlap: int, dead: int = DEAD_BAND) -> np.ndarray:
    """1-D weights for a window: ramps at inner edges only."""
    n = end - start
    dead = min(dead, overlap // 4)
    d = np.arange(n, dtype=np.float32)
    width = max(1.0, overlap - 2 * dead)
    w = np.ones(n, np.float32)
    if start > 0:
        w = np.minimum(w, np.clip((d - dead + 0.5) / width, 0.0, 1.0))
    if end < length:
        w = np.minimum(w, np.clip((n - 1 - d - dead + 0.5) / width, 0.0, 1.0))
    return np.maximum(w, 1e-6)  # never exactly zero: the normalising sum stays positive


def weights(window: Window, height: int, width: int, overlap: int) -> np.ndarray:
    wy = ramp(window.y0, window.y1, height, overlap)
    wx = ramp(window.x0, window.x1, width, overlap)
    return wy[:, None] * wx[None, :]
