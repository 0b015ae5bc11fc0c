"""Edge-aware upsampling of a low-resolution stylization, guided by the full-resolution photo.

Why: brush strokes have a fixed size in *network* pixels, so a 24 MP photo
gets strokes too fine to see. Stylizing a reduced copy gives the intended
stroke size, but a plain bilinear upsample then blurs every edge. The fast
guided filter (He & Sun 2015) instead fits, at low resolution, a local affine
map from the photo's colours to the stylized colours (``q = A·I + b`` over
small windows), upsamples the smooth coefficients ``A, b`` and applies them
to the full-resolution photo: colours and strokes come from the
stylization, edge positions from the photo. The fit's residual is folded into
``b``, so shrinking the result gives the low-resolution stylization back. Work at full resolution is done
in row bands, so memory stays proportional to one band plus the output.
OpenCV's joint bilateral filter lives in opencv-contrib (not a dependency);
this needs only ``cv2.boxFilter`` and ``cv2.remap``.
"""

from __future__ import annotations

import cv2
import numpy as np

from restyle.imaging import resize

RADIUS = 1  # low-res pixels: small windows keep the stroke texture
EPS = 1e-3  # regularisation: limits the gain A where the photo is flat (noise, JPEG blocks)
BAND_ROWS = 256


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(guide: np.ndarray, target: np.ndarray, radius: int = RADIUS, eps: float = EPS) -> np.ndarray:
    """Per-pixel affine maps from a colour guide to a colour target: ``(h, w, 12)`` = 3x3 ``A`` and ``b``."""
    h, w = guide.shape[:2]
    mean_i = _box(guide, radius)
    mean_p = _box(target, radius)
    # 3x3 covariance of the guide and 3x3 cross-covariance with the target, per pixel.
    cov_ii = np.empty((h, w, 3, 3), np.float32)
    cov_ip = np.empty((h, w, 3, 3), np.float32)
    for a in range(3):
        for b in range(3):
            if b >= a:
                cov_ii[..., a, b] = _box(guide[..., a] * guide[..., b], radius) - mean_i[..., a] * mean_i[..., b]
                cov_ii[..., b, a] = cov_ii[..., a, b]
            cov_ip[..., a, b] = _box(guide[..., a] * target[..., b], radius) - mean_i[..., a] * mean_p[..., b]
    cov_ii += np.eye(3, dtype=np.float32) * np.float32(eps)
    coef_a = np.linalg.solve(cov_ii, cov_ip).astype(np.float32)  # q_c = sum_k A[k, c] I_k + b_c
    coef_b = mean_p - np.einsum("hwk,hwkc->hwc", mean_i, coef_a)
    coefs = _box(np.concatenate([coef_a.reshape(h, w, 9), coef_b], axis=2), radius)  # average overlapping windows
    # Fold the fit's residual into b, so the result reproduces ``target`` exactly at low
    # resolution: strokes the affine model cannot explain are kept, not smoothed away.
    a = coefs[..., :9].reshape(h, w, 3, 3)
    coefs[..., 9:] = target - np.einsum("hwk,hwkc->hwc", guide, a)
    return coefs


def guided_upsample(low: np.ndarray, photo: np.ndarray, radius: int = RADIUS, eps: float = EPS) -> np.ndarray:
    """Upsample ``low`` (h, w, 3) to the photo's size, with edges taken from ``photo`` (H, W, 3)."""
    big_h, big_w = photo.shape[:2]
    h, w = low.shape[:2]
    guide = resize(photo, h, w)
    coefs = guided_coefficients(guide, low, radius, eps)
    out = np.empty((big_h, big_w, 3), np.float32)
    # Same sampling grid as imaging.resize (cv2.resize): pixel centres aligned. Bicubic, because b carries stroke texture.
    xs = ((np.arange(big_w, dtype=np.float32) + 0.5) * (w / big_w) - 0.5).astype(np.float32)
    for y0 in range(0, big_h, BAND_ROWS):
        y1 = min(big_h, y0 + BAND_ROWS)
        ys = ((np.arange(y0, y1, dtype=np.float32) + 0.5) * (h / big_h) - 0.5).astype(np.float32)
        map_x = np.broadcast_to(xs, (y1 - y0, big_w)).copy()
        map_y = np.broadcast_to(ys[:, None], (y1 - y0, big_w)).copy()
        band = np.concatenate(
            [
                cv2.remap(
                    np.ascontiguousarray(coefs[..., c : c + 4]),
                    map_x,
                    map_y,
                    cv2.INTER_CUBIC,
                    None,
                    cv2.BORDER_REPLICATE,
                )
                for c in range(0, 12, 4)
            ],
            axis=2,
        )
        guide_band = photo[y0:y1]
        a = band[..., :9].reshape(y1 - y0, big_w, 3, 3)
        out[y0:y1] = np.einsum("hwk,hwkc->hwc", guide_band, a) + band[..., 9:]
    return np.clip(out, 0.0, 1.0, out=out)
