"""The one call shape of every reference generator, after Captum's attribution methods.

Captum builds a method on a model and asks ``attribute(inputs, target=...)``.
The generators here are built the same way, on what stays fixed between calls
(a model, a layer, a config), and every one is called alike::

    result = Method(...).generate(inputs, target, *, seed=0, progress=True, callback=None)

* ``inputs``: the 1x3xHxW image in [0, 1] the method works on (the content
  photo, the photo to attack, invert or dream on), or ``None`` where it starts
  from noise (texture synthesis, class visualization, fooling images);
* ``target``: what the image is pushed towards: a class index (class
  visualization takes several, one image each) or the style image(s) whose
  Gram matrices are matched; ``None`` where the method has none (DeepDream and
  inversion: the layer, fixed when the method is built, is the whole objective);
* ``seed``: every random draw of the call (noise, jitter, transforms) comes
  from a generator seeded with it, so a call is reproducible; methods with no
  randomness (an attack on a photo, style transfer from the photo) ignore it;
* ``callback(stage, step, images)``: called after every step; ``stage`` is
  the scale or octave (0 for single-scale methods), ``step`` counts from 1
  within it, so ``--save-every`` snapshots can be named by both.

Every call returns a :class:`Result` (or a subclass with the method's own
measurements): the images and the per-step history. A method given an
argument it has no use for raises :class:`~restyle.errors.UserError` rather
than silently ignoring it, because a silently ignored target is a wrong figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Protocol, TypeVar

from torch import Tensor

from restyle.errors import UserError

StepCallback = Callable[[int, int, Tensor], None]
"""``callback(stage, step, images)``: the images after ``step`` (from 1) of ``stage`` (scale/octave, from 0)."""


@dataclass
class Result:
    """What every generator returns: its images and what each step measured.

    ``history`` holds one dict of named scalars per step; each method's
    docstring names its keys (``total`` is the minimized loss of the
    optimization methods, ``objective`` the maximized score of the ascent
    methods). Optimization methods record the initial image as step 0.
    """

    images: Tensor  # N x 3 x H x W in [0, 1]: N = 1, or one image per target
    history: list[dict[str, float]]

    @property
    def image(self) -> Tensor:
        """The first image, 1 x 3 x H x W: the only one for every method that takes one target."""
        return self.images[:1]

    def reduction(self, key: str = "total") -> float:
        """Fraction by which ``key`` fell from the first to the last step (0.9 = 90% lower)."""
        first, last = self.history[0][key], self.history[-1][key]
        return 1.0 - last / first if first > 0 else 0.0


TargetT = TypeVar("TargetT", contravariant=True)
ResultT = TypeVar("ResultT", bound=Result, covariant=True)


class ImageGenerator(Protocol[TargetT, ResultT]):
    """The protocol of every reference generator (see the module docstring for what each argument means)."""

    def generate(
        self,
        inputs: Tensor | None = None,
        target: TargetT | None = None,
        *,
        seed: int = 0,
        progress: bool = True,
        callback: StepCallback | None = None,
    ) -> ResultT: ...


def require_inputs(method: str, inputs: Tensor | None) -> Tensor:
    """The input image of a method that works on one, or a UserError that names the method."""
    if inputs is None:
        raise UserError(f"{method} works on an input image; inputs=None")
    if inputs.ndim != 4 or inputs.shape[:2] != (1, 3):
        raise UserError(f"{method} takes a 1x3xHxW image, not a tensor of shape {tuple(inputs.shape)}")
    return inputs


def no_inputs(method: str, inputs: Tensor | None) -> None:
    """Methods that start from noise refuse an input image instead of ignoring it."""
    if inputs is not None:
        raise UserError(f"{method} starts from noise (seeded by seed=); it takes inputs=None")


def no_target(method: str, target: object) -> None:
    """Methods whose objective is fixed when they are built refuse a target instead of ignoring it."""
    if target is not None:
        raise UserError(f"{method} has no target: its objective is the layer it was built with")


def _is_index(t: object) -> bool:
    return isinstance(t, Integral) and not isinstance(t, bool)


def class_target(method: str, target: int | None) -> int:
    """One class index, required."""
    if not _is_index(target):
        raise UserError(f"{method} needs one target class index (an int), not {target!r}")
    return int(target)  # type: ignore[arg-type]


def class_targets(method: str, target: int | Sequence[int] | None) -> list[int]:
    """One class index or several (one image each), at least one."""
    targets = [target] if _is_index(target) else list(target or [])  # type: ignore[arg-type]
    if not targets or not all(_is_index(t) for t in targets):
        raise UserError(f"{method} needs target class indices (an int or a list of them), not {target!r}")
    return [int(t) for t in targets]


__all__ = [
    "ImageGenerator",
    "Result",
    "StepCallback",
    "class_target",
    "class_targets",
    "no_inputs",
    "no_target",
    "require_inputs",
]
