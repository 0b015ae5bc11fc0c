"""Gatys et al. 2016 style transfer and Gatys et al. 2015 texture synthesis by pixel optimization.

The slow, exact reference the feed-forward networks approximate: VGG19 with
the shipped Caffe weights, content matched at relu4_2, style matched as Gram
matrices at relu1_1 ... relu5_1. Several style images blend by a weighted sum
of their Gram matrices. ``scales > 1`` runs coarse to fine (each scale
starts from the upsampled previous result), which finds large-scale structure
cheaply and is how high resolutions stay tractable on a CPU.

``StyleTransfer`` and ``TextureSynthesis`` follow the suite's one call shape
(``restyle.reference.method``): built on a config, called as
``generate(inputs, target)`` with the style image(s) as the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from restyle.errors import UserError
from restyle.imaging import long_side_size
from restyle.models.vgg import VGGFeatures
from restyle.reference.features import vgg19_features
from restyle.reference.losses import content_loss, gram_distance, gram_matrix, transfer_luminance, tv_prior
from restyle.reference.method import Result, StepCallback, no_inputs, require_inputs
from restyle.reference.optim import optimize_image

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INITS = ("content", "noise")


def vgg19() -> VGGFeatures:
    """The shared VGG19 trunk returning the style and content layers (from the one reference cache)."""
    return vgg19_features((*STYLE_LAYERS, CONTENT_LAYER))


@dataclass
class GatysConfig:
    """Knobs of one run. Weights are relative to losses that are means, so they do not depend on size."""

    size: int = 512
    steps: int = 300
    optimizer: str = "lbfgs"
    init: str = "content"
    content_weight: float = 1.0
    style_weight: float = 100.0
    tv_weight: float = 1.0
    preserve_color: bool = False
    scales: int = 1
    lr: float | None = None
    scale_steps: tuple[int, ...] | None = None  # steps per scale, coarse to fine (sets ``scales``; ``steps`` unused)
    style_blend: tuple[float, ...] | None = None  # one weight per style image of the target (default: equal)

    def __post_init__(self) -> None:
        if self.scale_steps:
            self.scales = len(self.scale_steps)

    def steps_at(self, scale: int) -> int:
        return self.scale_steps[scale] if self.scale_steps else self.steps

    def validate(self) -> None:
        if self.size < 16:
            raise UserError(f"size must be at least 16 pixels, not {self.size}")
        if self.init not in INITS:
            raise UserError(f"init must be one of {', '.join(INITS)}, not {self.init!r}")
        if self.scales < 1 or self.size >> (self.scales - 1) < 16:
            raise UserError(f"scales={self.scales} makes the coarsest scale smaller than 16 pixels")
        if min(self.content_weight, self.style_weight, self.tv_weight) < 0:
            raise UserError("loss weights must not be negative")
        if self.scale_steps is not None and min(self.scale_steps, default=0) < 1:
            raise UserError(f"scale_steps must be positive step counts, not {self.scale_steps}")
        if self.style_blend is not None and (min(self.style_blend, default=0) < 0 or sum(self.style_blend) <= 0):
            raise UserError("style blend weights must be non-negative and not all zero")


def resize_long(x: Tensor, size: int) -> Tensor:
    """Resize an NCHW tensor so that the longer side is ``size`` (the tensor twin of ``imaging.resize``)."""
    h, w = x.shape[-2:]
    hw = long_side_size(h, w, size)
    if hw == (h, w):
        return x
    shrink = hw[0] * hw[1] < h * w  # antialiasing only matters when shrinking
    return F.interpolate(x, size=hw, mode="bilinear", antialias=shrink, align_corners=False).clamp(0, 1)


VGG_MIN_SIDE = 16  # relu5_1 sits behind four 2x2 poolings: a side under 16 px pools to nothing


def check_vgg_sizes(images: dict[str, Tensor], long_side: int) -> None:
    """Refuse, before any work, an image whose short side at ``long_side`` is too small for VGG's deepest layer.

    Measured: a 20x64 photo at ``size=64, scales=2`` reached relu5_1 as 1x4 and failed inside
    PyTorch's max pooling; users see the reason and the fix instead.
    """
    for what, x in images.items():
        h, w = long_side_size(*x.shape[-2:], long_side)
        if min(h, w) < VGG_MIN_SIDE:
            raise UserError(
                f"the {what} is {h}x{w} px at the coarsest scale ({long_side} px); VGG needs at least "
                f"{VGG_MIN_SIDE} px on each side: use a larger size, fewer scales or a less elongated image"
            )


def style_targets(
    net: VGGFeatures, styles: Sequence[Tensor], weights: Sequence[float] | None, size: int
) -> dict[str, Tensor]:
    """Weighted blend of the styles' Gram matrices; each style is resized to ``size`` on its long side."""
    if not styles:
        raise UserError("at least one style image is needed")
    if weights is None:
        weights = [1.0 / len(styles)] * len(styles)
    if len(weights) != len(styles):
        raise UserError(f"{len(styles)} style image(s) but {len(weights)} style weight(s)")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UserError("style weights must be non-negative and not all zero")
    total = float(sum(weights))
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for img, w in zip(styles, weights):
            feats = net(resize_long(img, size), STYLE_LAYERS)
            for k in STYLE_LAYERS:
                out[k] = out.get(k, 0) + gram_matrix(feats[k]) * (w / total)
    return out


def _noise_like(x: Tensor, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _scale_sizes(size: int, scales: int) -> list[int]:
    return [size >> (scales - 1 - i) for i in range(scales)]


class StyleTransfer:
    """Gatys et al. 2016: ``StyleTransfer(config).generate(content, target=styles) -> Result``.

    ``inputs`` is the content photo and ``target`` the style image (or a
    sequence of them, blended by ``config.style_blend``), all 1x3xHxW in
    [0, 1]. The result is the last scale's image; its history concatenates the
    scales (``total``, ``content``, ``style``, ``tv``), the first entry being
    the initial image at the first scale. ``seed`` draws the noise of
    ``init="noise"``; from the photo the run has no randomness.
    """

    def __init__(self, config: GatysConfig | None = None):
        self.config = config or GatysConfig()
        self.config.validate()  # fail when built, not after the first scale
        self.net = vgg19()

    def generate(
        self,
        inputs: Tensor | None = None,
        target: Tensor | Sequence[Tensor] | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> Result:
        cfg, net = self.config, self.net
        content = require_inputs("style transfer", inputs)
        styles = _styles(target)
        sizes = _scale_sizes(cfg.size, cfg.scales)
        check_vgg_sizes(
            {"content image": content, **{f"style image {i + 1}": s for i, s in enumerate(styles)}}, sizes[0]
        )
        result: Result | None = None
        history: list[dict[str, float]] = []
        for i, size in enumerate(sizes):
            c = resize_long(content, size)
            with torch.no_grad():
                c_target = net(c, [CONTENT_LAYER])[CONTENT_LAYER]
            s_targets = style_targets(net, styles, cfg.style_blend, size)
            if result is not None:
                init = F.interpolate(result.image, size=c.shape[-2:], mode="bilinear", align_corners=False)
            else:
                init = c if cfg.init == "content" else _noise_like(c, seed)

            def loss_fn(x: Tensor, c_target: Tensor = c_target, s_targets: dict[str, Tensor] = s_targets):
                feats = net(x)
                lc = content_loss(feats[CONTENT_LAYER], c_target)
                ls = gram_distance({k: gram_matrix(feats[k]) for k in STYLE_LAYERS}, s_targets)
                tv = tv_prior(x)
                total = cfg.content_weight * lc + cfg.style_weight * ls + cfg.tv_weight * tv
                return {"total": total, "content": lc, "style": ls, "tv": tv}

            desc = f"gatys {size}px" + (f" ({i + 1}/{cfg.scales})" if cfg.scales > 1 else "")
            result = optimize_image(
                init, loss_fn, cfg.steps_at(i), cfg.optimizer, cfg.lr, desc, _at_stage(callback, i), progress
            )
            history += result.history
        assert result is not None
        image = transfer_luminance(result.image, content) if cfg.preserve_color else result.image
        return Result(image, history)


@dataclass(frozen=True)
class TextureConfig:
    """Knobs of one texture synthesis.

    ``scale_steps`` runs coarse to fine: one scale per entry, each half the
    size of the next (the style measured at the same ratio), each starting from
    the upsampled previous result. ``style_size`` (default: the output's long
    side) sets the scale at which the source's statistics are measured, hence
    the size of the texture's elements.
    """

    size: tuple[int, int] = (256, 256)  # output H, W
    scale_steps: tuple[int, ...] = (300,)
    optimizer: str = "lbfgs"
    style_size: int | None = None

    def validate(self) -> None:
        h, w = self.size
        if not self.scale_steps or min(self.scale_steps) < 1:
            raise UserError(f"scale_steps must be positive step counts, not {self.scale_steps}")
        if min(h, w) >> (len(self.scale_steps) - 1) < 16:
            raise UserError(
                f"texture size must be at least 16x16 at its coarsest scale, not {h}x{w} / {len(self.scale_steps)} scales"
            )


class TextureSynthesis:
    """Gatys et al. 2015: ``TextureSynthesis(config).generate(target=style) -> Result``.

    Matches only the Gram matrices of ``target`` (one 1x3xHxW image), starting
    from noise drawn with ``seed`` (so ``inputs`` must be None), at the
    config's output size. The history concatenates the scales (``total`` =
    ``style``, the relative Gram error).
    """

    def __init__(self, config: TextureConfig | None = None):
        self.config = config or TextureConfig()
        self.config.validate()
        self.net = vgg19()

    def generate(
        self,
        inputs: Tensor | None = None,
        target: Tensor | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> Result:
        no_inputs("texture synthesis", inputs)
        (style,) = _styles(target, one=True)
        cfg, net = self.config, self.net
        h, w = cfg.size
        plan = cfg.scale_steps
        full_style = cfg.style_size or max(h, w)
        check_vgg_sizes({"style image": style}, full_style >> (len(plan) - 1))
        result: Result | None = None
        history: list[dict[str, float]] = []
        for i, n in enumerate(plan):
            shift = len(plan) - 1 - i
            hw = (h >> shift, w >> shift)
            targets = style_targets(net, [style], None, full_style >> shift)
            if result is None:
                init = _noise_like(torch.zeros(1, 3, *hw), seed)
            else:
                init = F.interpolate(result.image, size=hw, mode="bilinear", align_corners=False)

            def loss_fn(x: Tensor, targets: dict[str, Tensor] = targets) -> dict[str, Tensor]:
                feats = net(x, STYLE_LAYERS)
                ls = gram_distance({k: gram_matrix(feats[k]) for k in STYLE_LAYERS}, targets)
                return {"total": ls, "style": ls}

            desc = f"texture {hw[0]}x{hw[1]}"
            result = optimize_image(init, loss_fn, n, cfg.optimizer, None, desc, _at_stage(callback, i), progress)
            history += result.history
        assert result is not None
        return Result(result.image, history)


def _styles(target: Tensor | Sequence[Tensor] | None, one: bool = False) -> list[Tensor]:
    """The style image(s) of a call: one 1x3xHxW tensor or a sequence of them."""
    styles = [target] if isinstance(target, Tensor) else list(target or [])
    if not styles:
        raise UserError("at least one style image is needed as the target")
    if one and len(styles) != 1:
        raise UserError(f"texture synthesis takes one style image as the target, not {len(styles)}")
    for s in styles:
        if not isinstance(s, Tensor) or s.ndim != 4 or s.shape[:2] != (1, 3):
            raise UserError("style images are 1x3xHxW tensors in [0, 1]")
    return styles


def _at_stage(callback: StepCallback | None, stage: int) -> Callable[[int, Tensor], None] | None:
    """The optimization loop's ``callback(step, image)`` for one stage of a coarse-to-fine run."""
    return None if callback is None else (lambda step, image: callback(stage, step, image))
