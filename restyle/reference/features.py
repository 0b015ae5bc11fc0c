"""What the convolutional layers respond to: first-layer filters, feature maps and maximally activating patches."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from restyle.errors import UserError
from restyle.models.vgg import VGGFeatures, layer_names


@functools.cache
def vgg19_features(layers: tuple[str, ...]) -> VGGFeatures:
    """The reference suite's one VGG19 cache: one frozen trunk per set of returned layers.

    Building a trunk dequantizes the bundled weights (a noticeable pause on a
    CPU), so every method and figure shares the trunk for its layers.
    """
    return VGGFeatures(layers=layers)


def vgg_to(layer: str) -> VGGFeatures:
    """A VGG19 trunk cut at ``layer`` (validated with a clear error for unknown names)."""
    if layer not in layer_names("vgg19"):
        raise UserError(f"unknown VGG19 layer {layer!r}; choose one of {', '.join(layer_names('vgg19'))}")
    return vgg19_features((layer,))


def vgg_first_filters() -> Tensor:
    """64 x 3 x 3 x 3 conv1_1 kernels in RGB order (the Caffe weights are BGR)."""
    return vgg_to("conv1_1").trunk[0].weight.detach().flip(1)


def normalize_filters(w: Tensor) -> Tensor:
    """Each filter scaled symmetrically around grey so its colour contrasts are visible."""
    m = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    return 0.5 + 0.5 * w / m


class Activations:
    """Feature maps of one VGG19 layer: ``compute(inputs)`` -> C x h x w for a 1x3xHxW input."""

    def __init__(self, layer: str = "relu2_1"):
        self.layer = layer
        self.net = vgg_to(layer)

    @torch.no_grad()
    def compute(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)[self.layer][0]


def receptive_field(layer: str) -> tuple[int, int]:
    """(size, stride) in input pixels of one unit of a VGG19 layer: 3x3/1 convs and 2x2/2 pools."""
    size, jump = 1, 1
    for name in layer_names("vgg19")[: layer_names("vgg19").index(layer) + 1]:
        if name.startswith("conv"):
            size += 2 * jump
        elif name.startswith("pool"):
            size += jump
            jump *= 2
    return size, jump


@dataclass
class Patch:
    value: float
    image: int
    y: int
    x: int
    crop: Tensor  # 3 x s x s, the unit's receptive field (grey where it leaves the image)


class MaxPatches:
    """The ``k`` image patches that most excite each chosen channel of a layer, over a set of images.

    A patch is the receptive field of the maximizing unit; overlapping
    maxima in one image are suppressed so the nine show nine different things.
    """

    def __init__(self, layer: str = "relu3_1", k: int = 9):
        self.layer, self.k = layer, k
        self.net = vgg_to(layer)
        self.size, self.stride = receptive_field(layer)

    @torch.no_grad()
    def find(self, images: Sequence[Tensor], channels: Sequence[int]) -> dict[int, list[Patch]]:
        maps = [self.net(img)[self.layer][0] for img in images]
        nch = maps[0].shape[0]
        bad = [c for c in channels if not 0 <= c < nch]
        if bad:
            raise UserError(f"{self.layer} has channels 0..{nch - 1}; got {bad}")
        return {c: self._top(images, [m[c] for m in maps]) for c in channels}

    def _top(self, images: Sequence[Tensor], maps: Sequence[Tensor]) -> list[Patch]:
        cand = []
        for i, m in enumerate(maps):
            vals, idx = m.flatten().topk(min(64, m.numel()))
            cand += [(float(v), i, int(j) // m.shape[1], int(j) % m.shape[1]) for v, j in zip(vals, idx)]
        cand.sort(reverse=True)
        chosen: list[Patch] = []
        min_gap = max(1, self.size // (2 * self.stride))  # in units: half a receptive field apart
        for v, i, y, x in cand:
            if any(p.image == i and abs(p.y - y) < min_gap and abs(p.x - x) < min_gap for p in chosen):
                continue
            chosen.append(Patch(v, i, y, x, self._crop(images[i], y, x)))
            if len(chosen) == self.k:
                break
        return chosen

    def _crop(self, image: Tensor, y: int, x: int) -> Tensor:
        s, half = self.size, self.size // 2
        cy, cx = y * self.stride + (self.stride - 1) // 2, x * self.stride + (self.stride - 1) // 2
        out = torch.full((3, s, s), 0.5)
        _, _, h, w = image.shape
        y0, x0 = cy - half, cx - half
        ys, xs = slice(max(y0, 0), min(y0 + s, h)), slice(max(x0, 0), min(x0 + s, w))
        out[:, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = image[0, :, ys, xs]
        return out
