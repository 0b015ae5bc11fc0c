import pytest
import torch

from restyle.models.classifier import class_index
from restyle.reference.generate import DeepDream, FoolingImage, TargetedAttack

from .conftest import photo


def test_targeted_attack_flips_top1_within_4_over_255(classifier, chelsea):
    target = class_index("goldfish")
    r = TargetedAttack(classifier, eps=4 / 255).generate(chelsea, target, progress=False)
    assert r.steps == len(r.history) and r.history[-1]["objective"] > r.history[0]["objective"]
    assert r.success and int(classifier(r.image).argmax()) == target
    assert r.linf <= 4 / 255 + 1e-6
    assert r.target_prob_after > r.target_prob_before
    assert next(iter(r.before)) in {"tabby", "tiger cat", "Egyptian cat"}


@pytest.mark.slow
def test_fooling_image_from_noise(classifier):
    # Succeeds in about 28 of the 40 steps at 128 px (the margin of 8 logits stops it early).
    r = FoolingImage(classifier, size=128, steps=40).generate(target=class_index("school bus"), progress=False)
    assert r.success and r.target_prob_after > 0.9


def test_deepdream_raises_its_layer_activation():
    torch.manual_seed(0)
    x = photo("astronaut", 96)
    dd = DeepDream("relu3_1", octaves=2, steps=4)
    y = dd.generate(x, progress=False).image
    with torch.no_grad():
        assert float(dd.objective(y)) > 1.5 * float(dd.objective(x))
