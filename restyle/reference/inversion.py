"""Feature inversion (Mahendran & Vedaldi 2015): which image does a VGG19 layer "see"?

Starting from noise, find the image whose activations at one layer match the
photo's, regularized by total variation (the natural-image prior of the
paper). Shallow layers (relu2_2) reconstruct the photo almost exactly; deep
ones (relu5_1) keep the layout and lose colour and detail, which is the point
of the figure.
"""

from __future__ import annotations

import torch
from torch import Tensor

from restyle.reference.features import vgg_to
from restyle.reference.losses import content_loss, tv_prior
from restyle.reference.optim import OptimResult, optimize_image


def invert(
    image: Tensor,
    layer: str = "relu2_2",
    steps: int = 200,
    tv_weight: float = 0.05,
    optimizer: str = "lbfgs",
    seed: int = 0,
    progress: bool = True,
) -> OptimResult:
    """Reconstruct ``image`` (1x3xHxW in [0, 1]) from its ``layer`` activations alone.

    The history's ``feature`` term is the relative feature error (0 is a
    perfect match); ``tv`` the smoothness prior weighted by ``tv_weight``.
    """
    net = vgg_to(layer)  # a UserError for unknown layers
    with torch.no_grad():
        target = net(image)[layer]
    g = torch.Generator().manual_seed(seed)
    init = (0.5 + 0.1 * torch.randn(image.shape, generator=g)).clamp(0, 1)

    def loss_fn(x: Tensor) -> dict[str, Tensor]:
        lf = content_loss(net(x)[layer], target)
        tv = tv_prior(x)
        return {"total": lf + tv_weight * tv, "feature": lf, "tv": tv}

    return optimize_image(init, loss_fn, steps, optimizer, None, f"invert {layer}", None, progress)
