"""Class visualization with the image priors the literature found necessary (Yosinski 2015, Olah 2017).

Plain gradient ascent on a class logit from noise (Simonyan et al. 2014)
finds a high-frequency pattern the classifier is sure about and a person sees
as noise: a fooling image (Nguyen et al. 2015). What makes the class appear
is the prior put on the image, and this module has the ones that matter:

* **decorrelated colour** and a **Fourier parametrization** with 1/f scaling
  (Olah, Mordvintsev & Schubert 2017, "Feature Visualization"): the optimizer
  steps in a whitened space where every frequency and colour direction is
  equally easy to change, instead of one where high frequencies dominate;
* **transformation robustness** (jitter, random scale, random rotation,
  padding; Mordvintsev et al. 2015, Olah et al. 2017): the image must work
  under small shifts and zooms, so one-pixel tricks do not survive;
* **octaves** (multi-scale, coarse to fine): large structure is found at a
  low resolution first and refined after upsampling;
* periodic **Gaussian blur** and **clipping of pixels with little
  contribution** to the class score (Yosinski et al. 2015), which push the
  background towards grey and keep the object.

The image is ``sigmoid(decorrelate(irfft(scale * spectrum)))``; blur is a
Gaussian window on the spectrum and clipping/upsampling re-encode the edited
image into the spectrum, so every regularizer acts on the same parameters.

``ClassVisualization(model, config).generate(target=classes)`` runs it, with
the suite's one call shape (``restyle.reference.method``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from restyle.reference.method import Result, StepCallback, class_targets, no_inputs

# Square root of ImageNet's colour covariance (Olah et al. 2017 / lucid), rows = RGB.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()
_MAGIC = 4.0  # lucid's constant: keeps the initial image's pre-sigmoid spread sensible


@dataclass(frozen=True)
class FeatureVisConfig:
    """Every knob of one run; ``octaves`` are image sizes, coarse to fine, sharing ``steps`` equally.

    The defaults are the priors the gallery publishes: at 128 px and 128 steps
    it already draws a goldfish's head, a flamingo's neck and a strawberry's
    seeds (checked by eye), with every class above p = 0.97.
    """

    steps: int = 384
    octaves: tuple[int, ...] = (112, 160, 224)
    lr: float = 0.05
    decorrelate: bool = True
    fourier: bool = True
    decay_power: float = 1.0
    pad: int = 12
    jitter: int = 16
    scales: tuple[float, ...] = tuple(0.75 + 0.05 * i for i in range(11))
    angles: tuple[float, ...] = tuple(range(-10, 11)) + (0,) * 5
    blur_every: int = 4
    blur_sigma: float = 0.5
    clip_every: int = 16
    clip_pct: float = 5.0
    other_weight: float = 0.0  # subtract this times the mean of the other logits (0: the plain logit)

    @property
    def regularizers(self) -> list[str]:
        """The priors this config uses, in words (for figure titles and captions)."""
        out = []
        if self.fourier:
            out.append(f"Fourier 1/f^{self.decay_power:g} parametrization")
        if self.decorrelate:
            out.append("decorrelated colour")
        if len(self.octaves) > 1:
            out.append(f"octaves {'/'.join(map(str, self.octaves))} px")
        if self.pad or self.jitter:
            out.append(f"pad {self.pad} + jitter {self.jitter}px")
        if len(set(self.scales)) > 1:
            out.append(f"random scale {min(self.scales):g}-{max(self.scales):g}")
        if len(set(self.angles)) > 1:
            out.append(f"random rotation ±{max(abs(a) for a in self.angles):g}°")
        if self.blur_every:
            out.append(f"Gaussian blur σ={self.blur_sigma:g} every {self.blur_every} steps")
        if self.clip_every:
            out.append(f"clip the {self.clip_pct:g}% lowest-contribution pixels every {self.clip_every} steps")
        return out


def _freqs(h: int, w: int) -> Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return (fx * fx + fy * fy).sqrt()


class ImageParam(nn.Module):
    """An N x 3 x H x W image in (0, 1) as ``sigmoid(C @ irfft(scale * spectrum))`` (or plain pixels)."""

    def __init__(self, n: int, size: int, fourier: bool = True, decorrelate: bool = True, decay_power: float = 1.0):
        super().__init__()
        self.size, self.fourier, self.decorrelate = size, fourier, decorrelate
        f = _freqs(size, size)
        self.register_buffer("freqs", f, persistent=False)
        self.register_buffer("scale", 1.0 / f.clamp_min(1.0 / size) ** decay_power, persistent=False)
        shape = (n, 3, *f.shape, 2) if fourier else (n, 3, size, size)
        self.param = nn.Parameter(torch.zeros(shape))

    def init_random(self, g: torch.Generator, sd: float = 0.01) -> None:
        with torch.no_grad():
            self.param.copy_(torch.randn(self.param.shape, generator=g) * sd)

    def _colour(self, t: Tensor, inverse: bool = False) -> Tensor:
        if not self.decorrelate:
            return t
        m = COLOR_CORRELATION.to(t)
        m = torch.linalg.inv(m) if inverse else m
        return torch.einsum("nchw,dc->ndhw", t, m)

    def forward(self) -> Tensor:
        if self.fourier:
            spec = torch.view_as_complex(self.param) * self.scale
            t = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / _MAGIC
        else:
            t = self.param
        return torch.sigmoid(self._colour(t))

    @torch.no_grad()
    def encode(self, image: Tensor) -> None:
        """Set the parameters so that ``forward()`` returns ``image`` (resized to this size)."""
        if image.shape[-1] != self.size:
            image = F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=False)
        t = self._colour(torch.logit(image.clamp(1e-4, 1 - 1e-4)), inverse=True)
        if self.fourier:
            spec = torch.fft.rfft2(t * _MAGIC, norm="ortho") / self.scale
            self.param.copy_(torch.view_as_real(spec))
        else:
            self.param.copy_(t)

    @torch.no_grad()
    def blur(self, sigma: float) -> None:
        """Gaussian blur of the pre-sigmoid image (exact, periodic: a Gaussian window on the spectrum)."""
        if self.fourier:
            self.param.mul_(torch.exp(-2 * math.pi**2 * sigma**2 * self.freqs**2)[None, None, ..., None])
        else:
            from restyle.reference.generate import gaussian_blur

            self.param.copy_(gaussian_blur(self.param, sigma))


def _transform(x: Tensor, cfg: FeatureVisConfig, g: torch.Generator) -> Tensor:
    """Lucid's standard transforms: pad, jitter, random scale, random rotation, jitter."""

    def pick(options: tuple) -> float:
        return options[int(torch.randint(len(options), (1,), generator=g))]

    def jitter(t: Tensor, d: int) -> Tensor:
        if d <= 0:
            return t
        dy, dx = (int(v) for v in torch.randint(0, d + 1, (2,), generator=g))
        return t[..., dy : t.shape[-2] - d + dy, dx : t.shape[-1] - d + dx]

    if cfg.pad:
        x = F.pad(x, (cfg.pad,) * 4, mode="constant", value=0.5)
    x = jitter(x, cfg.jitter)
    s, a = pick(cfg.scales), math.radians(pick(cfg.angles))
    if s != 1.0 or a != 0.0:
        cos, sin = math.cos(a), math.sin(a)
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype).expand(x.shape[0], 2, 3)
        size = [x.shape[0], 3, max(16, round(x.shape[-2] * s)), max(16, round(x.shape[-1] * s))]
        grid = F.affine_grid(theta, size, align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return jitter(x, cfg.jitter // 2)


@dataclass
class ClassVisResult(Result):
    """One image per target (``images``: N x 3 x S x S) and how sure the classifier is of each.

    ``history`` has one entry per step: ``objective`` (the mean target logit
    over the batch) and ``logit_i`` (the logit of the i-th target for its image).
    """

    targets: list[int]
    probabilities: list[float]  # softmax probability of each target at 224 px, untransformed


def class_probabilities(model: nn.Module, images: Tensor, targets: list[int]) -> list[float]:
    """Each image's probability for its target, seen the way every figure feeds the classifier (224 px)."""
    from restyle.models.classifier import INPUT_SIZE

    x = images
    if x.shape[-1] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        p = model(x).softmax(1)
    return [float(p[i, t]) for i, t in enumerate(targets)]


class ClassVisualization:
    """``ClassVisualization(model, config).generate(target=classes) -> ClassVisResult``: one image per class.

    Maximizes each target's logit (one class index, or several in one batch)
    from noise drawn with ``seed``, so ``inputs`` must be None; ``seed`` also
    draws every random transform. The callback's stage is the octave.
    """

    def __init__(self, model: nn.Module, config: FeatureVisConfig | None = None):
        self.model, self.config = model, config or FeatureVisConfig()

    def generate(
        self,
        inputs: Tensor | None = None,
        target: int | Sequence[int] | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> ClassVisResult:
        no_inputs("class visualization", inputs)
        targets = class_targets("class visualization", target)
        cfg, model = self.config, self.model
        g = torch.Generator().manual_seed(seed)
        n, idx = len(targets), torch.tensor(targets)
        per_octave = [
            cfg.steps // len(cfg.octaves) + (i < cfg.steps % len(cfg.octaves)) for i in range(len(cfg.octaves))
        ]
        history: list[dict[str, float]] = []
        bar = tqdm(total=cfg.steps, desc="class visualization", disable=not progress, leave=False)
        image: Tensor | None = None
        step = 0
        for octave, (size, steps) in enumerate(zip(cfg.octaves, per_octave)):
            param = ImageParam(n, size, cfg.fourier, cfg.decorrelate, cfg.decay_power)
            if image is None:
                param.init_random(g)
            else:
                param.encode(image)
            opt = torch.optim.Adam(param.parameters(), lr=cfg.lr)
            for octave_step in range(1, steps + 1):
                step += 1
                img = param()
                img.retain_grad()
                logits = model(_transform(img, cfg, g))
                own = logits[torch.arange(n), idx]
                obj = own - cfg.other_weight * (logits.sum(1) - own) / (logits.shape[1] - 1)
                opt.zero_grad()
                (-obj.sum()).backward()
                opt.step()
                if cfg.blur_every and step % cfg.blur_every == 0:
                    param.blur(cfg.blur_sigma)
                if cfg.clip_every and step % cfg.clip_every == 0 and img.grad is not None:
                    with torch.no_grad():
                        x = img.detach()
                        contrib = ((x - 0.5) * img.grad).sum(1, keepdim=True).abs()
                        q = torch.quantile(contrib.flatten(1), cfg.clip_pct / 100, dim=1).view(-1, 1, 1, 1)
                        param.encode(torch.where(contrib <= q, 0.5 + (x - 0.5) * 0.5, x))
                own = own.detach()
                history.append({"objective": float(own.mean()), **{f"logit_{i}": float(v) for i, v in enumerate(own)}})
                bar.update()
                bar.set_postfix(logit=f"{float(own.mean()):.1f}")
                if callback is not None:
                    with torch.no_grad():
                        callback(octave, octave_step, param())
            with torch.no_grad():
                image = param().detach()
        bar.close()
        assert image is not None
        return ClassVisResult(image, history, targets, class_probabilities(model, image, targets))
