"""Images made by gradient ascent on a network: adversarial and fooling images, DeepDream.

Each method is a class with the suite's one call shape (``restyle.reference.method``):
``TargetedAttack(model).generate(photo, target)``, ``FoolingImage(model).generate(target=...)``,
``DeepDream(layer).generate(photo)``. Class visualization, which needs image
priors to show anything, lives in ``featurevis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from restyle.reference.features import vgg_to
from restyle.reference.method import Result, StepCallback, class_target, no_inputs, no_target, require_inputs


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflect padding (Yosinski's periodic smoothing regularizer)."""
    r = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.device)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _jitter(x: Tensor, amount: int, g: torch.Generator) -> tuple[int, int]:
    if amount <= 0:
        return 0, 0
    dy, dx = (int(v) for v in torch.randint(-amount, amount + 1, (2,), generator=g))
    return dy, dx


@dataclass
class AttackResult(Result):
    """An attack's image (``images``, 1x3xHxW) and what it did to the classifier.

    ``history`` has one entry per gradient step: ``lead`` (target logit minus
    the best other logit, the stopping criterion) and ``objective`` (the
    target's log-probability, which the steps raise).
    """

    target: int
    steps: int
    linf: float
    before: dict[str, float]  # {class name: probability} of the top classes before
    after: dict[str, float]
    target_prob_before: float
    target_prob_after: float
    success: bool


class TargetedAttack:
    """Iterative targeted L-infinity attack (Kurakin et al. 2017 / PGD): push ``target`` to top-1 within ``eps``.

    ``TargetedAttack(model, ...).generate(photo, target=class_index) -> AttackResult``.
    Steps of ``alpha`` along the sign of the gradient of the target's
    log-probability, projected back into the eps-ball and [0, 1]; it stops once
    the target leads by ``margin`` in logits so the change stays minimal.
    Deterministic: ``seed`` is accepted for the common call shape and unused.
    """

    def __init__(
        self, model: nn.Module, eps: float = 4 / 255, alpha: float = 0.5 / 255, steps: int = 60, margin: float = 2.0
    ):
        self.model, self.eps, self.alpha, self.steps, self.margin = model, eps, alpha, steps, margin

    def _top(self, x: Tensor, k: int = 3) -> tuple[dict[str, float], Tensor]:
        with torch.no_grad():
            p = self.model(x).softmax(1)[0]
        names = getattr(self.model, "categories", None)
        v, i = p.topk(min(k, p.numel()))
        return {(names[j] if names else str(int(j))): float(q) for q, j in zip(v, i)}, p

    def generate(
        self,
        inputs: Tensor | None = None,
        target: int | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> AttackResult:
        inputs = require_inputs("a targeted attack", inputs)
        target = class_target("a targeted attack", target)
        before, p0 = self._top(inputs)
        x = inputs.clone()
        done = 0
        history: list[dict[str, float]] = []
        bar = tqdm(range(self.steps), desc="attack", disable=not progress, leave=False)
        for done in bar:  # noqa: B007 - the count is reported
            x.requires_grad_(True)
            logits = self.model(x)
            others = logits.clone()
            others[0, target] = -float("inf")
            lead = logits[0, target] - others.max()
            if lead.item() >= self.margin:
                x = x.detach()
                break
            loss = logits.log_softmax(1)[0, target]
            (grad,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x = x + self.alpha * grad.sign()
                x = (inputs + (x - inputs).clamp(-self.eps, self.eps)).clamp(0, 1)
            history.append({"lead": float(lead.detach()), "objective": float(loss.detach())})
            bar.set_postfix(lead=f"{float(lead.detach()):.2f}")
            if callback is not None:
                callback(0, done + 1, x)
        else:
            done = self.steps  # every step ran without reaching the margin
        x = x.detach()
        after, p1 = self._top(x)
        top1 = int(p1.argmax())
        return AttackResult(
            x,
            history,
            target,
            done,
            float((x - inputs).abs().max()),
            before,
            after,
            float(p0[target]),
            float(p1[target]),
            top1 == target,
        )


class FoolingImage:
    """Nguyen et al. 2015: ``FoolingImage(model, ...).generate(target=class_index) -> AttackResult``.

    From uniform noise drawn with ``seed`` (so ``inputs`` must be None), an
    unrecognisable image the classifier labels ``target`` with high
    confidence: the targeted attack with no eps-ball, stopped once the class
    leads by ``margin`` logits.
    """

    def __init__(
        self, model: nn.Module, size: int = 224, steps: int = 100, alpha: float = 2 / 255, margin: float = 8.0
    ):
        self.size = size
        self.attack = TargetedAttack(model, eps=1.0, alpha=alpha, steps=steps, margin=margin)

    def generate(
        self,
        inputs: Tensor | None = None,
        target: int | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> AttackResult:
        no_inputs("a fooling image", inputs)
        g = torch.Generator().manual_seed(seed)
        noise = torch.rand(1, 3, self.size, self.size, generator=g)
        return self.attack.generate(noise, target, progress=progress, callback=callback)


class DeepDream:
    """Mordvintsev et al. 2015: amplify whatever a VGG19 layer sees, by gradient ascent on its squared activations.

    ``DeepDream(layer, ...).generate(photo) -> Result``. Coarse-to-fine
    octaves grow large structures; random jitter (drawn with ``seed``) hides
    the pooling grid. The layer is the whole objective, so there is no
    ``target``; the history's ``objective`` is the mean squared activation at
    each step (of the octave's image), and the callback's stage is the octave.
    """

    def __init__(
        self,
        layer: str = "relu4_1",
        octaves: int = 3,
        octave_scale: float = 1.4,
        steps: int = 10,
        lr: float = 0.01,
        jitter: int = 16,
    ):
        self.layer, self.octaves, self.octave_scale, self.steps, self.lr, self.jitter = (
            layer,
            octaves,
            octave_scale,
            steps,
            lr,
            jitter,
        )
        self.net = vgg_to(layer)

    def objective(self, x: Tensor) -> Tensor:
        """Mean squared activation of the layer (what the dream maximizes and the test measures)."""
        return self.net(x)[self.layer].pow(2).mean()

    def generate(
        self,
        inputs: Tensor | None = None,
        target: None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> Result:
        inputs = require_inputs("DeepDream", inputs)
        no_target("DeepDream", target)
        g = torch.Generator().manual_seed(seed)
        h, w = inputs.shape[-2:]
        sizes = [
            (max(16, round(h / self.octave_scale**i)), max(16, round(w / self.octave_scale**i)))
            for i in range(self.octaves)
        ][::-1]
        base = [F.interpolate(inputs, size=s, mode="bilinear", antialias=True, align_corners=False) for s in sizes]
        detail = torch.zeros_like(base[0])
        history: list[dict[str, float]] = []
        bar = tqdm(total=self.octaves * self.steps, desc=f"deepdream {self.layer}", disable=not progress, leave=False)
        x = inputs
        for octave, img in enumerate(base):
            if octave:
                detail = F.interpolate(detail, size=img.shape[-2:], mode="bilinear", align_corners=False)
            x = (img + detail).clamp(0, 1)
            for step in range(1, self.steps + 1):
                dy, dx = _jitter(x, self.jitter, g)
                xs = torch.roll(x, (dy, dx), (2, 3)).requires_grad_(True)
                obj = self.objective(xs)
                (grad,) = torch.autograd.grad(obj, xs)
                with torch.no_grad():
                    grad = torch.roll(grad, (-dy, -dx), (2, 3))
                    x = (x + self.lr * grad / grad.abs().mean().clamp_min(1e-8)).clamp(0, 1)
                history.append({"objective": float(obj.detach())})
                bar.update()
                bar.set_postfix(objective=f"{float(obj.detach()):.3g}")
                if callback is not None:
                    callback(octave, step, x)
            detail = x - img
        bar.close()
        return Result(x.detach(), history)
