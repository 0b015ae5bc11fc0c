"""Every reference generator follows the one call shape of ``restyle.reference.method``.

Each generator runs for real on a tiny budget (32 px, two steps): VGG19 for
the optimization methods, and for the classifier methods a small CNN, seeded,
which is a real model of the kind they take (any module from 1x3xHxW images
to class logits) and runs in milliseconds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from restyle.errors import UserError
from restyle.reference.featurevis import ClassVisualization, FeatureVisConfig
from restyle.reference.gatys import GatysConfig, StyleTransfer, TextureConfig, TextureSynthesis
from restyle.reference.generate import DeepDream, FoolingImage, TargetedAttack
from restyle.reference.inversion import FeatureInversion
from restyle.reference.method import ImageGenerator, Result

from .conftest import photo


def tiny_classifier() -> nn.Module:
    """Ten classes from any image size: conv, ReLU, global pooling, linear; the same weights on every call."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    ).eval()


@dataclass
class Case:
    """One generator, how to build it, what to call it with, and what the call must give."""

    build: Callable[[], ImageGenerator[Any, Result]]
    inputs: Callable[[], Tensor | None]
    target: Callable[[], object]
    images: int  # how many images the result holds
    steps: int  # how many times the callback must be called
    random: bool  # whether the seed changes the result


PHOTO = lambda: photo("chelsea", 32)  # noqa: E731
STYLE = lambda: photo("coffee", 32)  # noqa: E731
NONE = lambda: None  # noqa: E731
NO_MARGIN = float("inf")  # the attacks run every step instead of stopping at a lead

CASES = {
    "StyleTransfer": Case(lambda: StyleTransfer(GatysConfig(size=32, steps=2, init="noise")), PHOTO, STYLE, 1, 2, True),
    "TextureSynthesis": Case(
        lambda: TextureSynthesis(TextureConfig(size=(32, 32), scale_steps=(2,))), NONE, STYLE, 1, 2, True
    ),
    "FeatureInversion": Case(lambda: FeatureInversion("relu1_1", steps=2), PHOTO, NONE, 1, 2, True),
    "DeepDream": Case(lambda: DeepDream("relu1_1", octaves=2, steps=2, jitter=4), PHOTO, NONE, 1, 4, True),
    "ClassVisualization": Case(
        lambda: ClassVisualization(tiny_classifier(), FeatureVisConfig(steps=2, octaves=(32,))),
        NONE,
        lambda: [1, 2],
        2,
        2,
        True,
    ),
    "FoolingImage": Case(
        lambda: FoolingImage(tiny_classifier(), size=32, steps=2, margin=NO_MARGIN), NONE, lambda: 3, 1, 2, True
    ),
    "TargetedAttack": Case(
        lambda: TargetedAttack(tiny_classifier(), steps=2, margin=NO_MARGIN), PHOTO, lambda: 3, 1, 2, False
    ),
}


def test_every_generator_has_the_one_signature():
    """Same parameter names, kinds and defaults: ``generate(inputs=None, target=None, *, seed=0, progress=True,
    callback=None)``, so code written against one generator calls any of them."""
    expected = [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("target", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("seed", inspect.Parameter.KEYWORD_ONLY, 0),
        ("progress", inspect.Parameter.KEYWORD_ONLY, True),
        ("callback", inspect.Parameter.KEYWORD_ONLY, None),
    ]
    for cls in (StyleTransfer, TextureSynthesis, FeatureInversion, DeepDream, ClassVisualization, FoolingImage):
        params = inspect.signature(cls.generate).parameters.values()
        assert [(p.name, p.kind, p.default) for p in params] == expected, cls.__name__
    params = inspect.signature(TargetedAttack.generate).parameters.values()
    assert [(p.name, p.kind, p.default) for p in params] == expected


@pytest.mark.parametrize("name", CASES)
def test_generator_returns_a_result_reproducible_by_seed(name):
    """A Result of N x 3 x H x W images in [0, 1] with a per-step history; the callback sees every step; the same
    seed gives the same images, another seed other images wherever the method draws anything at random."""
    case = CASES[name]
    method = case.build()
    calls: list[tuple[int, int, tuple[int, ...]]] = []
    run = lambda seed, cb=None: method.generate(  # noqa: E731
        case.inputs(), case.target(), seed=seed, progress=False, callback=cb
    )

    r = run(0, lambda stage, step, images: calls.append((stage, step, tuple(images.shape))))
    assert isinstance(r, Result)
    assert r.images.ndim == 4 and r.images.shape[:2] == (case.images, 3)
    assert float(r.images.min()) >= 0 and float(r.images.max()) <= 1
    assert torch.equal(r.image, r.images[:1])
    assert r.history and all(isinstance(v, float) for entry in r.history for v in entry.values())

    assert len(calls) == case.steps and calls[0][:2] == (0, 1)
    assert all(step >= 1 and shape[:2] == (case.images, 3) for _, step, shape in calls)

    assert torch.equal(run(0).images, r.images)
    assert torch.equal(run(1).images, r.images) is not case.random


@pytest.mark.parametrize("name", CASES)
def test_generator_refuses_arguments_it_has_no_use_for(name):
    """An input image to a method that starts from noise, no image to one that needs it, a target to one whose
    layer is its objective: each is a UserError, not a silently ignored argument."""
    case = CASES[name]
    method = case.build()
    wrong_inputs = PHOTO() if case.inputs() is None else None
    with pytest.raises(UserError):
        method.generate(wrong_inputs, case.target(), progress=False)
    if case.target() is None:
        with pytest.raises(UserError):
            method.generate(case.inputs(), 3, progress=False)
    else:
        with pytest.raises(UserError):
            method.generate(case.inputs(), None, progress=False)
