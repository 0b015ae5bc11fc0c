"""Optical flow between input frames, flow warping and the forward-backward consistency mask.

Conventions: a flow ``f_ab`` is an ``HxWx2`` float32 array of pixel offsets
(dx, dy) such that pixel ``p`` of frame ``a`` shows what is at ``p + f_ab(p)``
in frame ``b``. So ``warp(b, f_ab)`` resamples ``b`` into ``a``'s geometry,
and the previous stylized frame is carried to the current one with
``warp(prev, flow(cur -> prev))``.

Flow is computed on the *input* frames (the stylized ones have texture that
moves on its own) and at a reduced size: DIS costs grow with pixels, and
motion needed for blending is smooth; the field is upsampled and rescaled.
"""

from __future__ import annotations

import cv2
import numpy as np

from restyle.imaging import resize, to_uint8

FLOW_MAX_SIDE = 480  # flow is computed with the long side at most this, then upsampled


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 grayscale from uint8 or float [0, 1] RGB."""
    if rgb.dtype != np.uint8:
        rgb = to_uint8(rgb)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """DIS optical flow (Kroeger et al. 2016): fast on a CPU, good enough for blending.

    ``method="farneback"`` gives an independent estimator, so that a metric
    does not grade the stabilizer with the very flow it used.
    """

    def __init__(
        self, method: str = "dis", max_side: int = FLOW_MAX_SIDE, preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST
    ):
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown flow method {method!r}")
        self.method = method
        self.max_side = max_side
        self._dis = cv2.DISOpticalFlow_create(preset) if method == "dis" else None
        if self._dis is not None:
            self._dis.setUseSpatialPropagation(True)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grayscale uint8 frame ``a`` to ``b`` (same size), at ``a``'s full resolution."""
        h, w = a.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        if k < 1.0:
            size = (max(8, round(h * k)), max(8, round(w * k)))
            a_s = resize(a, *size, interpolation=cv2.INTER_AREA)
            b_s = resize(b, *size, interpolation=cv2.INTER_AREA)
        else:
            a_s, b_s = a, b
        if self._dis is not None:
            flow = self._dis.calc(a_s, b_s, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(a_s, b_s, None, 0.5, 4, 15, 3, 5, 1.2, 0)
        if k < 1.0:
            sy, sx = h / a_s.shape[0], w / a_s.shape[1]
            flow = resize(flow, h, w, interpolation=cv2.INTER_LINEAR)  # a vector field: linear, unclipped
            flow[..., 0] *= sx
            flow[..., 1] *= sy
        return flow.astype(np.float32, copy=False)


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    grid = _GRIDS.get((h, w))
    if grid is None:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        grid = _GRIDS[(h, w)] = (xs, ys)
    return grid


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample ``image`` at ``p + flow(p)`` (bilinear unless told otherwise, borders replicated).

    The stabilizer passes ``cv2.INTER_CUBIC``: it warps its own previous output
    every frame, and repeated bilinear resampling blurs the brush strokes away.
    """
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(flow_ab: np.ndarray, flow_ba: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Where ``flow_ab`` is reliable: 1.0, else 0.0 (float32 ``HxW``).

    Forward-backward check (Sundaram et al. 2010, as in Ruder et al. 2016):
    following ``flow_ab`` and then ``flow_ba`` should come back to the start;
    where it does not, the pixel is occluded or the flow is wrong. Pixels whose
    target falls outside the frame are unreliable too.
    """
    h, w = flow_ab.shape[:2]
    back = warp(flow_ba, flow_ab)
    total = flow_ab + back
    sq = lambda f: f[..., 0] ** 2 + f[..., 1] ** 2  # noqa: E731
    ok = sq(total) <= alpha * (sq(flow_ab) + sq(back)) + beta
    xs, ys = _grid(h, w)
    tx, ty = xs + flow_ab[..., 0], ys + flow_ab[..., 1]
    ok &= (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return ok.astype(np.float32)
