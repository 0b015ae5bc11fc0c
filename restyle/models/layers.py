"""Building blocks shared by the transformer architectures.

Every block takes ``(x, style)`` where ``style`` is an ``(N, S)`` weight
vector over the network's ``S`` styles. With one style it is all ones and the
normalisation reduces to ordinary affine instance normalisation (Ulyanov et
al. 2016); with several it is conditional instance normalisation (Dumoulin
et al. 2017): each style owns a (gamma, beta) pair and a weight vector blends
them, so one network holds N styles and can mix them at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StyleNorm(nn.Module):
    """Instance norm whose affine parameters are selected/blended per sample."""

    def __init__(self, channels: int, num_styles: int = 1, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        # Statistics in fp32 whatever the input dtype: fp16 variance of large
        # activations loses precision and the whole image shifts colour.
        y = F.instance_norm(x.float(), eps=self.eps).to(x.dtype)
        gamma = (style @ self.weight).to(x.dtype)[:, :, None, None]
        beta = (style @ self.bias).to(x.dtype)[:, :, None, None]
        return y * gamma + beta


class ConvNormAct(nn.Module):
    """Reflection pad -> conv -> style norm -> ReLU (the Johnson conv unit).

    Reflection padding instead of zero padding avoids dark borders in a network
    trained without it; ``pad="zero"`` pads inside the convolution instead,
    which ONNX Runtime does for free, while a reflection pad is its own pass
    over the feature map (9 % of the ``fast`` network's kernel time, measured
    in docs/performance.md). ``groups`` allows depthwise convolutions.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        num_styles: int = 1,
        groups: int = 1,
        act: bool = True,
        norm: bool = True,
        pad: str = "reflect",
    ):
        super().__init__()
        if pad not in ("reflect", "zero"):
            raise ValueError(f"pad must be 'reflect' or 'zero', not {pad!r}")
        zero = pad == "zero"
        self.pad = nn.Identity() if zero else nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups, padding=kernel // 2 if zero else 0)
        self.norm = StyleNorm(cout, num_styles) if norm else None
        self.act = act

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x, style)
        return F.relu(x) if self.act else x


class SeparableConvNormAct(nn.Module):
    """Depthwise 3x3 then pointwise 1x1: about 9x fewer MACs than a full 3x3."""

    def __init__(self, cin: int, cout: int, num_styles: int = 1, act: bool = True):
        super().__init__()
        self.depthwise = ConvNormAct(cin, cin, 3, num_styles=num_styles, groups=cin)
        self.pointwise = ConvNormAct(cin, cout, 1, num_styles=num_styles, act=act)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x, style), style)


class ResidualBlock(nn.Module):
    """Two conv units with an identity shortcut (no ReLU after the sum, as in Johnson's)."""

    def __init__(self, channels: int, num_styles: int = 1, separable: bool = False, pad: str = "reflect"):
        super().__init__()
        if separable:
            self.a = SeparableConvNormAct(channels, channels, num_styles)
            self.b = SeparableConvNormAct(channels, channels, num_styles, act=False)
        else:
            self.a = ConvNormAct(channels, channels, 3, num_styles=num_styles, pad=pad)
            self.b = ConvNormAct(channels, channels, 3, num_styles=num_styles, act=False, pad=pad)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return x + self.b(self.a(x, style), style)


class UpsampleConv(nn.Module):
    """x2 resize then a conv unit.

    Resize-then-convolve instead of a transposed convolution: transposed
    convolutions with stride 2 and kernel 3 overlap unevenly and paint
    checkerboards (Odena et al. 2016). ``mode="bilinear"`` (the fast network)
    instead of nearest: nearest-neighbour copies every value into a 2x2 block,
    and after three such stages the stride-8 ``fast`` network showed a visible
    8-pixel block grid at 100 % zoom; bilinear interpolation has no block edges
    to inherit. ``norm``/``act`` off turns the unit into a plain output layer.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        num_styles: int = 1,
        separable: bool = False,
        mode: str = "nearest",
        norm: bool = True,
        act: bool = True,
    ):
        super().__init__()
        self.mode = mode
        self.unit = (
            SeparableConvNormAct(cin, cout, num_styles, act=act)
            if separable
            else ConvNormAct(cin, cout, 3, num_styles=num_styles, norm=norm, act=act)
        )

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if self.mode == "nearest":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=False)
        return self.unit(x, style)
