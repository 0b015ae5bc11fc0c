"""Temporal stability and style fidelity of a stylized video.

Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency"):

    E = mean_t [ sum_i M_t(i) * ||O_t(i) - warp(O_{t-1}, F_t)(i)||^2 / sum_i M_t(i) ]

with ``F_t`` the optical flow from input frame t to t-1 and ``M_t`` the
non-occlusion mask from a forward-backward check, both computed on the
*input* frames. The reference flow is Farneback by default, a different
estimator from the DIS flow the stabilizer uses, so the stabilizer is not
graded with its own flow.

Style loss: the training objective's style term (Gram matrices of VGG-19
features, ``restyle.models.statistics.style_loss``) against the style image,
averaged over frames: stabilization must not wash the style out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from restyle.imaging import fit_max_size, to_float
from restyle.video.flow import FlowEstimator, consistency_mask, to_gray, warp


@dataclass
class TemporalReference:
    """Flows and masks of consecutive input frames, computed once and shared by every output variant."""

    flows: list[np.ndarray]  # flows[t-1]: frame t -> frame t-1
    masks: list[np.ndarray]

    @classmethod
    def from_frames(cls, frames: Sequence[np.ndarray], method: str = "farneback") -> TemporalReference:
        flow = FlowEstimator(method=method, max_side=10_000)
        grays = [to_gray(f) for f in frames]
        flows, masks = [], []
        for prev, cur in zip(grays, grays[1:]):
            back = flow(cur, prev)
            fwd = flow(prev, cur)
            flows.append(back)
            masks.append(consistency_mask(back, fwd))
        return cls(flows, masks)


def warping_errors(outputs: Sequence[np.ndarray], ref: TemporalReference) -> list[float]:
    """Per-frame-pair warping error (RGB in [0, 1], squared L2 per pixel, mean over reliable pixels)."""
    if len(outputs) != len(ref.flows) + 1:
        raise ValueError(f"{len(outputs)} outputs for {len(ref.flows) + 1} input frames")
    errors = []
    for t in range(1, len(outputs)):
        cur, prev = to_float(outputs[t]), to_float(outputs[t - 1])
        mask = ref.masks[t - 1]
        diff = ((cur - warp(prev, ref.flows[t - 1])) ** 2).sum(axis=2)
        errors.append(float((diff * mask).sum() / max(mask.sum(), 1.0)))
    return errors


def warping_error(outputs: Sequence[np.ndarray], ref: TemporalReference) -> float:
    errors = warping_errors(outputs, ref)
    return float(np.mean(errors)) if errors else 0.0


class StyleLoss:
    """Gram-matrix style loss of frames against one style image (VGG-19, the training layers)."""

    def __init__(
        self, style_image: np.ndarray, style_size: int = 256, frame_size: int | None = 256, weights: str | None = None
    ):
        import torch

        from restyle.models.statistics import gram_matrix
        from restyle.models.vgg import DEFAULT_STYLE_LAYERS, VGGFeatures

        self.torch = torch
        self.fit = fit_max_size
        self.frame_size = frame_size  # VGG is the slow part on a CPU; Gram statistics barely change with size
        self.layers = list(DEFAULT_STYLE_LAYERS)
        self.vgg = VGGFeatures(self.layers, weights=weights)
        style = fit_max_size(to_float(style_image), style_size)
        with torch.no_grad():
            feats = self.vgg(self._tensor(style), self.layers)
        self.grams = {k: gram_matrix(v) for k, v in feats.items()}

    def _tensor(self, image: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]

    def __call__(self, frames: Sequence[np.ndarray]) -> float:
        """Mean style loss over ``frames``."""
        from restyle.models.statistics import style_loss

        total = 0.0
        with self.torch.no_grad():
            for frame in frames:
                feats = self.vgg(self._tensor(self.fit(to_float(frame), self.frame_size)), self.layers)
                total += float(style_loss(feats, self.grams))
        return total / max(1, len(frames))
