"""Typed training configuration: validated once, saved in every checkpoint."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from restyle.models.transformer import ARCHITECTURES
from restyle.models.vgg import DEFAULT_STYLE_LAYERS, layer_names

# Defaults and why:
# - content at relu2_2 (Johnson et al. 2016): early enough to keep edges and
#   object outlines precise, so the network repaints texture and colour
#   instead of dissolving structure; deeper content layers let the style
#   move whole objects.
# - style at relu1_1 .. relu4_1 (Gatys' first four style layers, DEFAULT_STYLE_LAYERS in restyle.models.vgg,
#   where the video metrics read them too): the trunk can be cut after relu4_1, about a third of VGG19's compute;
#   relu5_1 adds little for feed-forward networks at small training sizes.
DEFAULT_CONTENT_LAYER = "relu2_2"


def warm_start_steps(settings: Mapping[str, Any]) -> int:
    """Identity warm-start steps a run with these settings (a ``TrainConfig`` dump) takes.

    None from a trained start (``init``) or a base, which already reproduce photos, nor with a teacher, whose
    outputs are the targets from the first step. The trainer and the model card both read it here.
    """
    if settings.get("init") or settings.get("base") or settings.get("teacher"):
        return 0
    return int(settings.get("identity_steps") or 0)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    style_images: list[Path] = Field(min_length=1)
    data: Path
    out: Path
    arch: str = "fast"
    steps: int = Field(2000, gt=0)
    batch_size: int = Field(4, gt=0)
    image_size: int = Field(256, ge=32)
    style_size: int = Field(512, ge=32)
    # more sizes of each painting (shorter side, px): its Gram targets are the mean of every size's, style_size's
    # included, so the network matches the painting's strokes at more than one scale; empty: style_size alone
    style_sizes: list[Annotated[int, Field(ge=32)]] = Field(default_factory=list)
    content_weight: float = Field(1.0, ge=0)
    style_weight: float = Field(1.0, ge=0)
    tv_weight: float = Field(0.5, ge=0)
    # sliced-Wasserstein colour term against the style image (train.losses.palette_loss); 0 leaves it out
    palette_weight: float = Field(0.0, ge=0)
    # the palette term measured on this many random pixels of each crop, new ones each step; 0: every pixel
    palette_samples: int = Field(0, ge=0)
    # the photo's tonal layout (luminance at 1/8 scale, train.losses.tone_loss) kept; 0 leaves it out
    tone_weight: float = Field(0.0, ge=0)
    # the painting's bare ground (its most common colour, restyle.train.ground) counts for at most this share of its
    # style targets, Gram and palette; 1 (the default): every pixel as painted
    ground_cap: float = Field(1.0, gt=0, le=1)
    # one painting: the style weight is lowered (never raised) so that weight x the style loss of untouched photos
    # against the painting (its "pull", Trainer.style_pull) stays at most this; 0: the weight as given
    style_pull_max: float = Field(0.0, ge=0)
    temporal_weight: float = Field(0.0, ge=0)
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: list[str] = Field(default_factory=lambda: list(DEFAULT_STYLE_LAYERS))
    style_layer_weights: list[float] | None = None  # one per style layer; None = all 1
    vgg_weights: Path | None = None
    identity_steps: int = Field(600, ge=0)  # pixel-reconstruction warm start before the perceptual steps
    init: Path | None = None  # start from a trained final.pt (fine-tuning, e.g. adding the temporal loss)
    # add a style: a trained multi-style model (name, .onnx or final.pt) the new style starts from; its
    # normalisation parameters train at ``lr``, its convolutions at ``decoder_lr`` and ``body_lr`` (0: kept
    # frozen; see restyle.train.add_style)
    base: str | None = None
    style_name: str | None = None  # the new style's name (default: the style image's file name)
    # adding a style: learning rate of the decoder (upsampling and output convolutions), trained with the norms
    # (0: the norms alone)
    decoder_lr: float = Field(0.0, ge=0)
    # adding a style: learning rate of every other convolution, the encoder and the residual body (0: frozen)
    body_lr: float = Field(0.0, ge=0)
    # adding a style: start from the mean of the base's styles, or from the nearest one (lowest style + palette loss)
    start_from: Literal["mean", "nearest"] = "mean"
    # distillation (restyle.train.distill): a trained network with the same styles, in the same order (a name,
    # .onnx or final.pt); the whole run then learns to reproduce its outputs (pixel and low-level VGG feature
    # losses, no Gram targets), each step's batch resized by one of ``distill_scales``
    teacher: str | None = None
    distill_scales: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    # with --init: train only these styles' rows of the normalisation parameters, on batches of those styles alone;
    # every convolution and every other style stays bit-identical (restyle.train.tune_styles)
    tune_styles: list[str] | None = None
    stop_when_flat: int = Field(0, ge=0)  # stop once the style loss of this many steps improves < 2% (0: never)
    # stop once the training clock (seconds spent in steps, resumes included) passes this many minutes (0: never);
    # ``steps`` stays the length of the learning-rate schedule, so a faster machine simply gets further along it
    max_minutes: float = Field(0.0, ge=0)
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    lr_min_fraction: float = Field(0.1, ge=0, le=1)
    checkpoint_every: int = Field(200, gt=0)
    sample_every: int = Field(200, gt=0)
    log_every: int = Field(10, gt=0)
    seed: int = 0
    device: str = "auto"
    num_workers: int = Field(0, ge=0)
    # mixed precision: the whole step on CUDA (bf16, else fp16); VGG alone in bf16 on a CPU that has native bf16
    amp: bool = True

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if v not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {v!r}; choose one of: {', '.join(ARCHITECTURES)}")
        return v

    @field_validator("content_layer")
    @classmethod
    def _content_layer(cls, v: str) -> str:
        if v not in layer_names("vgg19"):
            raise ValueError(f"unknown VGG layer {v!r}")
        return v

    @field_validator("style_layers")
    @classmethod
    def _style_layers(cls, v: list[str]) -> list[str]:
        bad = [name for name in v if name not in layer_names("vgg19")]
        if bad or not v:
            raise ValueError(f"unknown VGG layer(s): {', '.join(bad) or '(none given)'}")
        return v

    @model_validator(mode="after")
    def _layer_weights(self) -> TrainConfig:
        w = self.style_layer_weights
        if w is not None:
            if len(w) != len(self.style_layers):
                raise ValueError(f"{len(w)} style layer weight(s) for {len(self.style_layers)} style layer(s)")
            if any(v < 0 for v in w):
                raise ValueError("style layer weights must not be negative")
        return self

    def layer_weights(self) -> dict[str, float]:
        """Per style layer weight (all 1 by default: the losses are already balanced, see ``train.losses``)."""
        w = self.style_layer_weights or [1.0] * len(self.style_layers)
        return dict(zip(self.style_layers, w))

    def lr_at(self, step: int) -> float:
        """Learning rate for ``step``: a function of the step alone, so a resumed run follows the same curve.

        Cosine decay to ``lr_min_fraction`` of ``lr``: the late small steps
        smooth the speckle a constant rate leaves in the textures.
        """
        if self.lr_schedule == "constant":
            return self.lr
        t = min(max(step / self.steps, 0.0), 1.0)
        lo = self.lr * self.lr_min_fraction
        return lo + 0.5 * (self.lr - lo) * (1 + math.cos(math.pi * t))

    @model_validator(mode="after")
    def _new_style(self) -> TrainConfig:
        if self.base is not None:
            if len(self.style_images) != 1:
                raise ValueError("adding a style to a base takes exactly one style image")
            if self.init is not None:
                raise ValueError("--init and a base cannot be combined")
        elif self.style_name is not None:
            raise ValueError("a style name is only given when adding a style to a base")
        elif self.decoder_lr > 0 or self.body_lr > 0 or self.start_from != "mean":
            raise ValueError("decoder and body rates and a start style only apply when adding a style to a base")
        if self.style_pull_max > 0 and (len(self.style_images) != 1 or self.teacher is not None):
            raise ValueError(
                "a style pull limit applies to one painting with Gram targets (adding a style, no teacher)"
            )
        if self.teacher is not None and (self.base is not None or self.temporal_weight > 0):
            raise ValueError("a teacher (distillation) cannot be combined with a base or the temporal loss")
        if any(not 0.1 <= f <= 1.0 for f in self.distill_scales):
            raise ValueError("distill scales must lie in 0.1..1 (fractions of --image-size)")
        if self.tune_styles is not None:
            if self.init is None or self.base is not None or self.teacher is not None:
                raise ValueError("--tune-styles fine-tunes a trained network: give --init, not a base or a teacher")
            unknown = [s for s in self.tune_styles if s not in self.style_names()]
            if unknown or not self.tune_styles:
                raise ValueError(
                    f"--tune-styles {','.join(unknown) or '(none)'}: not among this run's styles "
                    f"({', '.join(self.style_names())})"
                )
        if self.style_name is not None:
            from restyle.runtime.registry import valid_name

            if not valid_name(self.style_name):
                raise ValueError(f"{self.style_name!r}: use lowercase letters, digits, '-' and '_'")
        return self

    def tuned_indices(self) -> list[int] | None:
        """Indices of ``tune_styles`` among the run's styles (None: every style and weight trains)."""
        if self.tune_styles is None:
            return None
        names = self.style_names()
        return [names.index(s) for s in self.tune_styles]

    def style_names(self) -> list[str]:
        if self.style_name is not None:
            return [self.style_name]
        return [p.stem for p in self.style_images]
