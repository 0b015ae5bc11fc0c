"""Which pixels does the classifier use? Occlusion (Zeiler & Fergus 2014) and gradient attributions via Captum.

Every class follows Captum's call shape: build it on a model, then
``attribute(inputs, target=...)`` returns an H x W map (higher = more
important) for a 1x3xHxW input in [0, 1]. ``target=None`` means the
predicted class.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def predicted(model: nn.Module, x: Tensor) -> int:
    with torch.no_grad():
        return int(model(x).argmax(1)[0])


class Occlusion:
    """Probability of ``target`` while a grey square slides over the image (Zeiler & Fergus 2014).

    Unlike Captum's ``Occlusion`` (the change of a score), this returns the
    class probability itself at each window position, upsampled to the input's
    size: dark where covering the pixels destroys the evidence.
    """

    def __init__(self, model: nn.Module, window: int = 48, stride: int = 16, batch: int = 32, fill: float = 0.5):
        self.model, self.window, self.stride, self.batch, self.fill = model, window, stride, batch, fill

    @torch.no_grad()
    def probability_grid(self, inputs: Tensor, target: int) -> Tensor:
        """rows x cols grid of target probability, one cell per window position."""
        _, _, h, w = inputs.shape
        ys = list(range(0, max(h - self.window, 0) + 1, self.stride))
        xs = list(range(0, max(w - self.window, 0) + 1, self.stride))
        boxes = [(y, x) for y in ys for x in xs]
        probs = []
        for i in range(0, len(boxes), self.batch):
            chunk = boxes[i : i + self.batch]
            batch = inputs.repeat(len(chunk), 1, 1, 1)
            for j, (y, x) in enumerate(chunk):
                batch[j, :, y : y + self.window, x : x + self.window] = self.fill
            probs.append(self.model(batch).softmax(1)[:, target])
        return torch.cat(probs).view(len(ys), len(xs))

    def attribute(self, inputs: Tensor, target: int | None = None) -> Tensor:
        """H x W map of the target probability with the window centred at each pixel (bilinear between centres)."""
        target = predicted(self.model, inputs) if target is None else target
        grid = self.probability_grid(inputs, target)
        h, w = inputs.shape[-2:]
        # Place each value at its window's centre, then interpolate over the image.
        half = self.window / 2
        up = F.interpolate(grid[None, None], size=(h, w), mode="bilinear", align_corners=True)[0, 0]
        # Cells span [half, h-half]; pixels nearer the border take the nearest window's value.
        ys = ((torch.arange(h) - half) / max(h - 2 * half, 1)).clamp(0, 1) * (h - 1)
        xs = ((torch.arange(w) - half) / max(w - 2 * half, 1)).clamp(0, 1) * (w - 1)
        return up[ys.round().long()][:, xs.round().long()]


class _GuidedReLU6(nn.ReLU):
    """ReLU6 that Captum recognises as a ReLU (it hooks ``nn.ReLU`` instances only) and that is not in-place."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x)


def guided_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ReLU/ReLU6 modules are out-of-place ``nn.ReLU`` instances.

    EfficientNet-Lite uses in-place ReLU6, which Captum's guided backprop would
    silently skip (not an ``nn.ReLU``) and which breaks its full backward hooks.
    """
    clone = copy.deepcopy(model)
    for parent in clone.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, _GuidedReLU6())
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, nn.ReLU(inplace=False))
    return clone


class _CaptumMap:
    """Run a Captum attribution and reduce its 3xHxW result to an H x W map."""

    reduce = "abs_max"

    def __init__(self, model: nn.Module):
        self.model = model

    def _attr(self, inputs: Tensor, target: int) -> Tensor:
        raise NotImplementedError

    def attribute(self, inputs: Tensor, target: int | None = None) -> Tensor:
        target = predicted(self.model, inputs) if target is None else target
        a = self._attr(inputs.clone().requires_grad_(True), target).detach()[0]
        return a.abs().amax(0) if self.reduce == "abs_max" else a.abs().sum(0)


class Saliency(_CaptumMap):
    """|d score / d pixel|, max over colour channels (Simonyan et al. 2014)."""

    def _attr(self, inputs: Tensor, target: int) -> Tensor:
        from captum.attr import Saliency as _Saliency

        return _Saliency(self.model).attribute(inputs, target=target, abs=True)


class GuidedBackprop(_CaptumMap):
    """Gradients with negative signals stopped at every ReLU (Springenberg et al. 2015)."""

    def __init__(self, model: nn.Module):
        super().__init__(guided_copy(model))

    def _attr(self, inputs: Tensor, target: int) -> Tensor:
        import warnings

        from captum.attr import GuidedBackprop as _GuidedBackprop

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Captum warns that it sets hooks, every call
            return _GuidedBackprop(self.model).attribute(inputs, target=target)


class IntegratedGradients(_CaptumMap):
    """Path integral of gradients from a black baseline (Sundararajan et al. 2017), summed over channels."""

    reduce = "abs_sum"

    def __init__(self, model: nn.Module, steps: int = 32, internal_batch_size: int = 16):
        super().__init__(model)
        self.steps, self.internal_batch_size = steps, internal_batch_size

    def _attr(self, inputs: Tensor, target: int) -> Tensor:
        from captum.attr import IntegratedGradients as _IG

        return _IG(self.model).attribute(
            inputs,
            baselines=torch.zeros_like(inputs),
            target=target,
            n_steps=self.steps,
            internal_batch_size=self.internal_batch_size,
        )


GRADIENT_METHODS: dict[str, type[_CaptumMap]] = {
    "saliency": Saliency,
    "guided-backprop": GuidedBackprop,
    "integrated-gradients": IntegratedGradients,
}
