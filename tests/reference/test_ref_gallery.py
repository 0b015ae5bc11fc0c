"""The gallery's budgets, its class visualization and its caption record, at the small ``test`` profile."""

import json

import pytest
import torch

from restyle.models.classifier import class_index
from restyle.reference import budget as bd
from restyle.reference import gallery, gatys
from restyle.reference.featurevis import ClassVisualization, ImageParam, class_probabilities

from .conftest import photo


def test_profiles_differ_and_tests_keep_small_budgets():
    test, pub = bd.PROFILES["test"], bd.PROFILES["publication"]
    assert test is bd.TEST and pub is bd.PUBLICATION
    assert pub.gatys.size >= 384 and pub.gatys.scales >= 2  # the 384-512 px, coarse to fine
    assert pub.gatys.sizes() == [128, 256, 512]
    assert len(pub.texture_styles) >= 2 and len(pub.inversion_layers) >= 4 and len(pub.classes) >= 4
    for small, big in [
        (test.gatys.size, pub.gatys.size),
        (sum(test.gatys.scale_steps), sum(pub.gatys.scale_steps)),
        (test.texture.size, pub.texture.size),
        (test.inversion_steps, pub.inversion_steps),
        (test.classvis.steps, pub.classvis.steps),
        (max(test.classvis.octaves), max(pub.classvis.octaves)),
    ]:
        assert small < big
    # every prior the literature asks for is on in the published class visualization
    words = " ".join(pub.classvis.regularizers)
    for prior in ("Fourier", "decorrelated colour", "octaves", "jitter", "Gaussian blur", "clip"):
        assert prior in words


def test_image_parametrization_round_trips_and_blur_smooths():
    g = torch.Generator().manual_seed(0)
    img = (0.5 + 0.2 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0.05, 0.95)
    for fourier in (True, False):
        p = ImageParam(2, 32, fourier=fourier, decorrelate=True)
        p.encode(img)
        assert torch.allclose(p(), img, atol=1e-3)
    p = ImageParam(2, 32)
    p.encode(img)
    rough = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean()  # noqa: E731
    before = rough(p())
    p.blur(1.0)
    assert rough(p()) < 0.7 * before


def test_class_visualization_raises_each_class_probability(classifier):
    """At the test budget (64 px, 40 steps), in one batch: goldfish from chance to p > 0.5, flamingo (harder) > 0.02.

    Measured: goldfish 0.80, flamingo 0.06; both start near 0.001.
    """
    targets = [class_index("goldfish"), class_index("flamingo")]
    g = torch.Generator().manual_seed(0)
    noise = (0.5 + 0.02 * torch.randn(1, 3, 64, 64, generator=g)).expand(2, 3, 64, 64)
    assert max(class_probabilities(classifier, noise, targets)) < 0.01
    r = ClassVisualization(classifier, bd.TEST.classvis).generate(target=targets, progress=False)
    assert r.images.shape == (2, 3, 64, 64) and r.targets == targets
    assert r.probabilities[0] > 0.5 and r.probabilities[1] > 0.02, r.probabilities
    assert all(r.history[-1][f"logit_{i}"] > r.history[0][f"logit_{i}"] for i in range(2))


@pytest.mark.slow
def test_coarse_to_fine_gatys_and_texture_end_at_the_full_size():
    cfg = gatys.GatysConfig(size=64, scale_steps=(6, 3))
    assert cfg.scales == 2
    r = gatys.StyleTransfer(cfg).generate(photo("chelsea", None), photo("coffee", None), progress=False)
    assert r.image.shape[-1] == 64 and len(r.history) == (6 + 1) + (3 + 1)
    texture = gatys.TextureSynthesis(gatys.TextureConfig(size=(64, 64), scale_steps=(8, 4)))
    t = texture.generate(target=photo("coffee", None), progress=False)
    assert t.image.shape[-2:] == (64, 64) and len(t.history) == (8 + 1) + (4 + 1) and t.reduction() > 0


def test_gallery_writes_captions_with_budget_and_time(tmp_path):
    gallery.build(tmp_path, bd.TEST, only={"filters", "class-visualization"})
    record = json.loads((tmp_path / "reference" / "gallery.json").read_text())
    assert set(record["figures"]) == {"class-visualization", "filters"}
    cv = record["figures"]["class-visualization"]
    assert cv["profile"] == "test" and cv["wall_seconds"] > 0 and cv["cpu_seconds"] >= 0
    assert "Olah" in cv["paper"] and "EfficientNet-Lite0" in cv["network"] and "40 Adam steps" in cv["budget"]
    assert "goldfish" in cv["note"] and (tmp_path / "reference" / "class-visualization.png").stat().st_size > 1000
    md = (tmp_path / "reference.md").read_text()
    assert "![Class visualization](reference/class-visualization.png)" in md
    assert f"**Time:** {cv['wall_seconds']:.0f} s" in md and "DGN-AM" in md
    # a second run of one figure keeps the other's entry
    gallery.build(tmp_path, bd.TEST, only={"filters"})
    assert set(json.loads((tmp_path / "reference" / "gallery.json").read_text())["figures"]) == {
        "class-visualization",
        "filters",
    }
