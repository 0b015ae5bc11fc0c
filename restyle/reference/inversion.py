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
from restyle.reference.method import Result, StepCallback, no_target, require_inputs
from restyle.reference.optim import optimize_image


class FeatureInversion:
    """``FeatureInversion(layer, ...).generate(photo) -> Result``: the photo rebuilt from one layer's activations.

    The layer is the whole objective, so there is no ``target``; ``seed``
    draws the starting noise. The history's ``feature`` term is the relative
    feature error (0 is a perfect match), ``tv`` the smoothness prior
    weighted by ``tv_weight``, ``total`` their weighted sum.
    """

    def __init__(self, layer: str = "relu2_2", steps: int = 200, tv_weight: float = 0.05, optimizer: str = "lbfgs"):
        self.net = vgg_to(layer)  # a UserError for unknown layers, before any work
        self.layer, self.steps, self.tv_weight, self.optimizer = layer, steps, tv_weight, optimizer

    def generate(
        self,
        inputs: Tensor | None = None,
        target: None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> Result:
        image = require_inputs("feature inversion", inputs)
        no_target("feature inversion", target)
        net, layer = self.net, self.layer
        with torch.no_grad():
            features = net(image)[layer]
        g = torch.Generator().manual_seed(seed)
        init = (0.5 + 0.1 * torch.randn(image.shape, generator=g)).clamp(0, 1)

        def loss_fn(x: Tensor) -> dict[str, Tensor]:
            lf = content_loss(net(x)[layer], features)
            tv = tv_prior(x)
            return {"total": lf + self.tv_weight * tv, "feature": lf, "tv": tv}

        step_cb = None if callback is None else (lambda step, x: callback(0, step, x))
        return optimize_image(init, loss_fn, self.steps, self.optimizer, None, f"invert {layer}", step_cb, progress)
