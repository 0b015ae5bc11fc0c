"""Distillation: a new (smaller) network learns to reproduce a trained one's outputs, all styles at once.

Why: the perceptual recipe needs a full VGG19 forward and backward to relu5_1
and Gram matrices per step, and it has to rediscover what the bundled
``classics`` network already paints. Matching the teacher's pictures needs
only the teacher's forward pass (cheap: it is a fast network itself), the
student's, and VGG up to relu2_1 for a low-level feature term, so a step costs
a fraction of a perceptual one (``python -m bench training_curve`` measures
both). The student then fine-tunes on the perceptual losses with the palette
term (an ordinary ``restyle train --init``), which is what lets it end better
than its teacher rather than only as good.

Losses: mean absolute RGB difference (colour and layout) plus the relative
squared error of VGG relu1_1 and relu2_1 features (edges and stroke texture,
which a pixel loss alone blurs: L1 is minimised by the median of the
possible strokes, a feature loss by strokes). Each step's batch is resized by
one of the run's ``distill_scales`` so the student learns the teacher at
several sizes: instance-norm statistics, and what zero padding does at the
borders, both depend on the size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from restyle.errors import UserError
from restyle.models.transformer import StyleNet
from restyle.models.vgg import VGGFeatures
from restyle.train.losses import LossTerms, content_loss, total_variation

DISTILL_LAYERS = ("relu1_1", "relu2_1")
PIXEL_WEIGHT = 10.0  # L1 of ~0.03 against feature errors of ~0.3 once the student is close: both matter


def load_teacher(spec: str, style_names: list[str]) -> StyleNet:
    """The trained network named by ``spec``, frozen, after checking it holds ``style_names`` in that order."""
    from restyle.train.add_style import load_base

    net, names = load_base(spec)
    if list(names) != list(style_names):
        raise UserError(
            f"teacher {spec} holds the styles {', '.join(names)}; the run's style images must be the same, "
            f"in the same order (got {', '.join(style_names)})"
        )
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def scaled(x: Tensor, scales: list[float], seed: int, step: int, stride: int) -> Tensor:
    """``x`` resized by one of ``scales``, chosen by (seed, step) so a resumed run sees the same sizes."""
    if len(scales) == 1 and scales[0] == 1.0:
        return x
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    f = scales[int(torch.randint(len(scales), (1,), generator=g))]
    h, w = x.shape[2:]
    size = (max(stride * 2, round(h * f / stride) * stride), max(stride * 2, round(w * f / stride) * stride))
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def distill_losses(y: Tensor, teacher_y: Tensor, vgg: VGGFeatures) -> LossTerms:
    """Student output ``y`` against the teacher's ``teacher_y`` for the same photos and styles."""
    feats_y = vgg(y, DISTILL_LAYERS)
    with torch.no_grad():
        feats_t = vgg(teacher_y, DISTILL_LAYERS)
    feature = sum(content_loss(feats_y[k], feats_t[k]) for k in DISTILL_LAYERS) / len(DISTILL_LAYERS)
    pixel = (y.float() - teacher_y.float()).abs().mean()
    zero = torch.zeros((), device=y.device)
    total = PIXEL_WEIGHT * pixel + feature
    return LossTerms(
        content=feature, style=zero, tv=total_variation(y.float()).detach(), temporal=zero, total=total, pixel=pixel
    )
