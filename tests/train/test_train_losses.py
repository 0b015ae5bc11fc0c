"""The perceptual losses are balanced: every style layer and the content term start on the same scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restyle.imaging import decode_image, fit_max_size
from restyle.models.transformer import build_network
from restyle.models.vgg import VGGFeatures
from restyle.train.config import DEFAULT_STYLE_LAYERS, TrainConfig
from restyle.train.losses import (
    content_loss,
    gram_matrix,
    palette_loss,
    palette_pixels,
    palette_targets,
    style_layer_losses,
    style_loss,
    total_variation,
)
from tests.conftest import REPO, SAMPLE_PHOTO

PAINTING = REPO / "restyle" / "styles" / "starry_night.jpg"  # the bundled thumbnail of a real painting


def _tensor(path: Path, size: int) -> torch.Tensor:
    img = fit_max_size(decode_image(path), size)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


@pytest.fixture(scope="module")
def vgg() -> VGGFeatures:
    return VGGFeatures(list(DEFAULT_STYLE_LAYERS))


@pytest.fixture(scope="module")
def targets(vgg: VGGFeatures) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {k: gram_matrix(v) for k, v in vgg(_tensor(PAINTING, 256), DEFAULT_STYLE_LAYERS).items()}


def test_style_layers_start_within_ten_times_of_each_other(vgg, targets) -> None:
    photo = _tensor(SAMPLE_PHOTO, 256)
    torch.manual_seed(0)
    with torch.no_grad():
        untrained = build_network("fast")(photo)
        for start in (photo, untrained):  # the photo itself and what an untrained network emits
            feats = vgg(start, DEFAULT_STYLE_LAYERS)
            terms = {k: float(v) for k, v in style_layer_losses(feats, targets).items()}
            assert max(terms.values()) <= 10 * min(terms.values()), terms
            # The raw Gram MSE (the old loss) is what this normalisation fixes: orders of magnitude apart.
            raw = [float(((gram_matrix(feats[k]) - t) ** 2).mean()) for k, t in targets.items()]
            assert max(raw) > 100 * min(raw)


def test_content_loss_is_relative_and_scale_free() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(2, 8, 5, 5), torch.rand(2, 8, 5, 5)
    assert float(content_loss(b, b)) == 0.0
    assert float(content_loss(torch.zeros_like(b), b)) == pytest.approx(1.0)
    assert float(content_loss(10 * a, 10 * b)) == pytest.approx(float(content_loss(a, b)), rel=1e-5)


def test_per_sample_targets_and_layer_weights() -> None:
    torch.manual_seed(0)
    feats = {"a": torch.rand(2, 4, 6, 6), "b": torch.rand(2, 8, 3, 3)}
    t1 = {k: gram_matrix(torch.rand(1, v.shape[1], 6, 6)) for k, v in feats.items()}
    t2 = {k: gram_matrix(torch.rand(1, v.shape[1], 6, 6)) for k, v in feats.items()}
    stacked = {k: torch.cat([t1[k], t2[k]]) for k in feats}
    first = {k: v[:1] for k, v in feats.items()}
    second = {k: v[1:] for k, v in feats.items()}
    # A (N, C, C) target scores each sample against its own style: the mean of the two separate losses.
    expected = (style_loss(first, t1) + style_loss(second, t2)) / 2
    assert float(style_loss(feats, stacked)) == pytest.approx(float(expected), rel=1e-5)
    only_a = style_loss(feats, stacked, {"a": 1.0, "b": 0.0})
    assert float(only_a) == pytest.approx(float(style_layer_losses(feats, stacked)["a"]), rel=1e-6)


def test_total_variation_is_a_mean_independent_of_size() -> None:
    torch.manual_seed(0)
    tile = torch.rand(1, 3, 16, 16)
    big = tile.repeat(1, 1, 4, 4)
    assert float(total_variation(big)) == pytest.approx(float(total_variation(tile)), rel=0.05)
    assert float(total_variation(torch.full((1, 3, 8, 8), 0.5))) == 0.0


def test_learning_rate_follows_a_cosine_to_the_floor(tmp_path: Path) -> None:
    cfg = TrainConfig(style_images=[tmp_path / "s.jpg"], data=tmp_path, out=tmp_path, steps=100, lr=1e-3)
    lrs = [cfg.lr_at(s) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    flat = cfg.model_copy(update={"lr_schedule": "constant"})
    assert flat.lr_at(50) == 1e-3


def test_style_layer_weights_from_the_command_line(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from restyle.errors import UserError
    from restyle.train.cli import parse_style_layers

    assert parse_style_layers("relu1_1,relu2_1") == {"style_layers": ["relu1_1", "relu2_1"]}
    parsed = parse_style_layers("relu1_1:2, relu3_1:0.5")
    assert parsed == {"style_layers": ["relu1_1", "relu3_1"], "style_layer_weights": [2.0, 0.5]}
    cfg = TrainConfig(style_images=[tmp_path / "s.jpg"], data=tmp_path, out=tmp_path, **parsed)
    assert cfg.layer_weights() == {"relu1_1": 2.0, "relu3_1": 0.5}
    with pytest.raises(UserError, match="not a number"):
        parse_style_layers("relu1_1:lots")
    with pytest.raises(ValidationError, match="style layer weight"):
        TrainConfig(
            style_images=[tmp_path / "s.jpg"],
            data=tmp_path,
            out=tmp_path,
            style_layers=["relu1_1"],
            style_layer_weights=[1, 2],
        )


def _palette_setup(style: torch.Tensor, k: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(k, 3, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return dirs, palette_targets(style[0].reshape(3, -1).T, dirs)[None]


def test_palette_loss_is_one_for_the_photo_and_zero_for_the_paintings_own_colours():
    g = torch.Generator().manual_seed(1)
    style = torch.rand(1, 3, 32, 32, generator=g) * torch.tensor([0.2, 0.3, 0.9])[:, None, None]  # bluish
    photo = torch.rand(1, 3, 32, 32, generator=g) * torch.tensor([0.9, 0.6, 0.2])[:, None, None]  # orange
    dirs, targets = _palette_setup(style)
    assert palette_loss(photo, photo, targets, dirs).item() == pytest.approx(1.0, abs=1e-5)
    # the painting's pixels rearranged (a different picture, the same colours) scores 0
    shuffled = style.reshape(3, -1)[:, torch.randperm(32 * 32, generator=g)].reshape(1, 3, 32, 32)
    assert palette_loss(shuffled, photo, targets, dirs).item() < 1e-5


def test_palette_loss_gradient_moves_the_colours_towards_the_painting():
    g = torch.Generator().manual_seed(2)
    style = torch.rand(1, 3, 24, 24, generator=g) * torch.tensor([0.2, 0.3, 0.9])[:, None, None]
    photo = torch.rand(1, 3, 24, 24, generator=g) * torch.tensor([0.9, 0.6, 0.2])[:, None, None]
    dirs, targets = _palette_setup(style)
    y = photo.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        palette_loss(y, photo, targets, dirs).backward()
        opt.step()
    final = palette_loss(y.detach(), photo, targets, dirs).item()
    assert final < 0.3
    mean = y.detach().mean(dim=(0, 2, 3))
    assert mean[2] > mean[0]  # blue now dominates red, as in the painting


def test_palette_pixels_are_distinct_fixed_by_the_seed_and_every_pixel_when_the_count_covers_them():
    a = palette_pixels(16, 16, 64, seed=3)
    assert a.shape == (64,) and a.unique().numel() == 64 and int(a.max()) < 256
    assert torch.equal(a, palette_pixels(16, 16, 64, seed=3))  # a resumed step measures the same pixels
    assert not torch.equal(a, palette_pixels(16, 16, 64, seed=4))
    assert torch.equal(palette_pixels(16, 16, 0, seed=3), torch.arange(256))
    assert torch.equal(palette_pixels(16, 16, 999, seed=3), torch.arange(256))


def test_palette_loss_on_sampled_pixels_is_the_loss_of_those_pixels_alone():
    g = torch.Generator().manual_seed(5)
    style = torch.rand(1, 3, 32, 32, generator=g) * torch.tensor([0.2, 0.3, 0.9])[:, None, None]
    photo = torch.rand(2, 3, 32, 32, generator=g)
    out = torch.rand(2, 3, 32, 32, generator=g)
    dirs, targets = _palette_setup(style)
    targets = targets.expand(2, -1, -1)
    pixels = palette_pixels(32, 32, 256, seed=0)
    # the same pixels gathered into a 16 x 16 picture score the same
    gather = lambda img: img.reshape(2, 3, -1)[:, :, pixels].reshape(2, 3, 16, 16)  # noqa: E731
    sampled = palette_loss(out, photo, targets, dirs, pixels).item()
    assert sampled == pytest.approx(palette_loss(gather(out), gather(photo), targets, dirs).item(), rel=1e-6)
    # every pixel listed is the unsampled loss, and a quarter of them estimates it closely
    full = palette_loss(out, photo, targets, dirs).item()
    assert palette_loss(out, photo, targets, dirs, torch.arange(32 * 32)).item() == pytest.approx(full, rel=1e-6)
    assert sampled == pytest.approx(full, rel=0.1)
    # the gradient reaches the sampled pixels only
    y = out.clone().requires_grad_(True)
    palette_loss(y, photo, targets, dirs, pixels).backward()
    touched = y.grad.abs().sum(dim=(0, 1)).flatten() > 0
    assert set(touched.nonzero().flatten().tolist()) <= set(pixels.tolist())


def test_tone_loss_counts_the_photos_faded_layout_not_its_brightness_or_colour() -> None:
    from skimage import data

    from restyle.train.losses import tone_loss

    photo = torch.from_numpy(data.astronaut()[:256, :256].astype(np.float32) / 255).permute(2, 0, 1)[None]
    grey = (photo * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).repeat(1, 3, 1, 1)
    assert float(tone_loss(photo, photo)) == pytest.approx(0.0, abs=1e-7)
    assert float(tone_loss(photo + 0.1, photo)) == pytest.approx(0.0, abs=1e-6)  # brighter: the palette's business
    assert float(tone_loss(grey, photo)) == pytest.approx(0.0, abs=1e-6)  # colour gone, tones kept
    assert float(tone_loss(torch.full_like(photo, 0.8), photo)) == pytest.approx(1.0)  # faded away
    assert float(tone_loss(0.9 + 0.1 * photo, photo)) == pytest.approx(0.81, rel=1e-3)  # a tenth of its contrast left


def test_the_tone_term_joins_the_total_at_its_weight(style_image: Path, photo_dir: Path, tmp_path: Path) -> None:
    from restyle.train.loop import Trainer

    trainer = Trainer(
        TrainConfig(style_images=[style_image], data=photo_dir, out=tmp_path, image_size=32, style_size=64,
                    tone_weight=3.0)
    )  # fmt: skip
    x = trainer._fixed_batch(2)
    terms = trainer.losses(x, torch.zeros(2, dtype=torch.long))
    cfg = trainer.cfg
    expected = cfg.content_weight * terms.content + trainer.style_weight * terms.style + cfg.tv_weight * terms.tv
    assert terms.tone is not None and float(terms.tone.detach()) > 0 and "tone" in terms.as_floats()
    assert float(terms.total.detach()) == pytest.approx(float((expected + 3.0 * terms.tone).detach()), rel=1e-5)
