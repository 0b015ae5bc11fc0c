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
    """A lighter network with the same contract, ~1/10 of TransformerNet's MACs.

    Where the savings come from: a 5x5 stem with 16 channels instead of 9x9
    with 32; three stride-2 stages so the residual blocks run at 1/64 of the
    pixels; depthwise-separable residual blocks; separable convolutions in the
    two high-resolution upsampling stages. Residual width stays 128 because at
    1/64 resolution it costs little and carries most of the style.
    """

    arch = "fast"
    stride = 8

    def __init__(self, num_styles: int = 1):
        super().__init__(num_styles)
        s = num_styles
        self.down = nn.ModuleList(
            [
                ConvNormAct(3, 16, 5, num_styles=s),
                ConvNormAct(16, 32, 3, 2, s),
                ConvNormAct(32, 64, 3, 2, s),
                ConvNormAct(64, 128, 3, 2, s),
            ]
        )
        self.res = nn.ModuleList([ResidualBlock(128, s, separable=True) for _ in range(5)])
        self.up = nn.ModuleList(
            [UpsampleConv(128, 64, s), UpsampleConv(64, 32, s, separable=True), UpsampleConv(32, 16, s, separable=True)]
        )
        self.out = ConvNormAct(16, 3, 5, num_styles=s, act=False, norm=False)


ARCHITECTURES: dict[str, type[StyleNet]] = {"johnson": TransformerNet, "fast": FastStyleNet}


def build_network(arch: str, num_styles: int = 1) -> StyleNet:
    """Create an untrained network by architecture name."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        from restyle.errors import UserError

        raise UserError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}") from None
    return cls(num_styles)
