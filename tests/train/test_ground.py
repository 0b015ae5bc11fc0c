"""A painting's bare ground: found, counted for at most the cap in the Gram and palette targets, else untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restyle.models.statistics import gram_matrix
from restyle.train.ground import ground_mask, ground_weight, position_weights, weighted_pixels


def study(h: int = 96, w: int = 96, subject: int = 48) -> np.ndarray:
    """A 'study on bare paper': cream paper with a little grain, a striped, coloured subject in its middle."""
    rng = np.random.default_rng(1)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.95, 0.9, 0.78)
    img += rng.normal(0, 0.008, img.shape).astype(np.float32)
    top, left = (h - subject) // 2, (w - subject) // 2
    yy, xx = np.mgrid[0:subject, 0:subject]
    img[top : top + subject, left : left + subject] = np.stack(
        [0.3 + 0.3 * np.sin(xx / 2.0), 0.2 + 0.2 * np.cos(yy / 3.0), 0.1 + 0.1 * np.sin((xx + yy) / 4.0)], axis=2
    )
    return np.clip(img, 0, 1)


def test_ground_mask_finds_the_bare_paper_around_a_painted_subject() -> None:
    img = study()
    mask = ground_mask(img)
    assert mask.mean() == pytest.approx(0.75, abs=0.03)
    assert mask[30:66, 30:66].mean() < 0.05  # the subject, a few pixels in from its blurred edge
    assert mask[:20].all() and mask[-20:].all()


def test_a_painting_without_a_ground_is_not_capped(style_image: Path) -> None:
    arr = np.asarray(Image.open(style_image).convert("RGB"), np.float32) / 255
    weights, share = position_weights(torch.from_numpy(arr).permute(2, 0, 1)[None], cap=0.5)
    assert weights is None and share < 0.5


@pytest.mark.parametrize("share", [0.6, 0.75, 0.9])
def test_ground_weight_makes_the_ground_exactly_the_cap_of_the_weighted_total(share: float) -> None:
    alpha = ground_weight(share, 0.5)
    assert alpha < 1 and alpha * share / (alpha * share + 1 - share) == pytest.approx(0.5)
    assert ground_weight(0.4, 0.5) == 1.0


def test_weighted_gram_is_the_gram_with_unit_weights_and_ignores_zero_weighted_positions() -> None:
    feat = torch.randn(1, 6, 8, 10)
    assert torch.allclose(gram_matrix(feat, torch.ones(1, 1, 16, 20)), gram_matrix(feat))
    right = torch.zeros(1, 1, 8, 10)
    right[..., 5:] = 1
    assert torch.allclose(gram_matrix(feat, right), gram_matrix(feat[..., 5:]), atol=1e-6)


def test_capped_targets_count_the_ground_for_the_cap_in_pixels_and_move_the_grams() -> None:
    img = torch.from_numpy(study()).permute(2, 0, 1)[None]
    weights, share = position_weights(img, cap=0.5)
    assert weights is not None and share == pytest.approx(0.75, abs=0.03)
    ground = torch.from_numpy(ground_mask(study())).reshape(-1)
    pixels = weighted_pixels(img, weights)
    kept_ground = len(pixels) - int((~ground).sum())
    assert kept_ground / len(pixels) == pytest.approx(0.5, abs=0.03)
    # the ground's cream weighs less: the weighted Gram of the raw pixels moves towards the subject's darker one
    assert gram_matrix(img, weights)[0].trace() < gram_matrix(img)[0].trace()


def test_the_trainer_caps_only_the_painting_with_a_ground(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    from restyle.train.config import TrainConfig
    from restyle.train.loop import Trainer

    paper = tmp_path / "study.png"
    Image.fromarray((study() * 255).astype(np.uint8)).save(paper)

    def targets(cap: float) -> Trainer:
        cfg = TrainConfig(style_images=[paper, style_image], data=photo_dir, out=tmp_path / f"run{cap}",
                          image_size=32, style_size=64, palette_weight=1.0, ground_cap=cap)  # fmt: skip
        return Trainer(cfg)

    capped, plain = targets(0.5), targets(1.0)
    for layer, grams in plain.style_grams.items():
        assert not torch.allclose(capped.style_grams[layer][0], grams[0]), layer  # the study: capped
        assert torch.equal(capped.style_grams[layer][1], grams[1]), layer  # the stripes: no ground, untouched
    assert not torch.equal(capped.palettes[0], plain.palettes[0])

    # the stripes' quantiles, resampled to the study's (now smaller) sample count: the same distribution
    def quantiles(q: torch.Tensor) -> torch.Tensor:
        return q[:, torch.linspace(0, q.shape[1] - 1, 256).round().long()]

    assert torch.allclose(quantiles(capped.palettes[1]), quantiles(plain.palettes[1]), atol=0.02)
