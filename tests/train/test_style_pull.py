"""The style pull: a faint painting pulls harder, and the weight is lowered to the limit, never raised or overridden."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restyle.cli import main
from restyle.models.serialization import read_model_record, save_model
from restyle.recipes import ADD_STYLE_DEFAULTS
from tests.networks import distinct_styles
from tests.train.test_add_style import SMALL


def trainer(style: Path, photos: Path, out: Path, **values):
    from restyle.train.config import TrainConfig
    from restyle.train.loop import Trainer

    values = {"image_size": 32, "style_size": 64, **values}
    return Trainer(TrainConfig(style_images=[style], data=photos, out=out, **values))


@pytest.fixture(scope="module")
def faint_style(style_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stripes painting washed out to a tenth of its contrast on pale paper: the same strokes, faint."""
    arr = np.asarray(Image.open(style_image).convert("RGB"), np.float32) / 255
    path = tmp_path_factory.mktemp("faint") / "faint.png"
    Image.fromarray(((0.9 + 0.1 * arr) * 255).astype(np.uint8)).save(path)
    return path


def test_a_faint_painting_pulls_harder_than_the_same_painting_in_full_contrast(
    style_image: Path, faint_style: Path, photo_dir: Path, tmp_path: Path
) -> None:
    full = trainer(style_image, photo_dir, tmp_path / "full").style_pull()
    faint = trainer(faint_style, photo_dir, tmp_path / "faint").style_pull()
    assert faint > 2 * full > 0


def test_the_style_weight_is_lowered_to_the_pull_limit_and_used_by_the_loss(
    faint_style: Path, photo_dir: Path, tmp_path: Path
) -> None:
    free = trainer(faint_style, photo_dir, tmp_path / "free", style_weight=4.0)
    pull = free.style_pull()
    assert free.style_weight == 4.0 and free.style_weight_note is None  # no limit: the weight as given
    loose = trainer(faint_style, photo_dir, tmp_path / "loose", style_weight=4.0, style_pull_max=10 * 4.0 * pull)
    assert loose.style_weight == 4.0 and "within the limit" in loose.style_weight_note  # never raised
    held = trainer(faint_style, photo_dir, tmp_path / "held", style_weight=4.0, style_pull_max=pull)
    assert held.style_weight == pytest.approx(1.0, rel=1e-6) and "over the limit" in held.style_weight_note
    x = held._fixed_batch(2)
    terms = held.losses(x, torch.zeros(2, dtype=torch.long))
    cfg = held.cfg
    expected = cfg.content_weight * terms.content + 1.0 * terms.style + cfg.tv_weight * terms.tv
    assert float(terms.total.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_a_pull_limit_takes_one_painting(style_image: Path, faint_style: Path, photo_dir: Path, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from restyle.train.config import TrainConfig

    with pytest.raises(ValidationError, match="one painting"):
        TrainConfig(style_images=[style_image, faint_style], data=photo_dir, out=tmp_path, style_pull_max=10)
    with pytest.raises(ValidationError, match="no teacher"):
        TrainConfig(style_images=[style_image], data=photo_dir, out=tmp_path, style_pull_max=10, teacher="classics")


@pytest.fixture(scope="module")
def base_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(distinct_styles("fast", 2), tmp_path_factory.mktemp("base") / "final.pt", ["a", "b"], {})


def add_style(capsys, base: Path, style: Path, photos: Path, out: Path, *extra: str) -> dict:
    code = main(["train", "--add-style", str(style), "--base", str(base), "--data", str(photos), "--out", str(out),
                 "--steps", "1", *SMALL, *extra])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    return read_model_record(out / "final.pt")["metadata"]


def test_add_style_applies_the_recipes_limit_and_says_so_on_the_card(
    capsys, base_pt: Path, faint_style: Path, photo_dir: Path, tmp_path: Path
) -> None:
    meta = add_style(capsys, base_pt, faint_style, photo_dir, tmp_path / "run", "--style-pull-max", "0.001")
    assert meta["settings"]["style_weight"] == ADD_STYLE_DEFAULTS["style_weight"]
    assert meta["style_weight"] < ADD_STYLE_DEFAULTS["style_weight"]
    card = next((tmp_path / "run").glob("*.md")).read_text()
    assert (
        "| style pull |" in card and "over the limit 0.001" in card and f"style {meta['style_weight']:.3g} over" in card
    )
    default = add_style(capsys, base_pt, faint_style, photo_dir, tmp_path / "default")
    assert default["settings"]["style_pull_max"] == ADD_STYLE_DEFAULTS["style_pull_max"] > 0


def test_an_explicit_style_weight_is_used_as_given_not_lowered_by_the_recipe(
    capsys, base_pt: Path, faint_style: Path, photo_dir: Path, tmp_path: Path
) -> None:
    meta = add_style(capsys, base_pt, faint_style, photo_dir, tmp_path / "run", "--style-weight", "2")
    assert meta["settings"]["style_pull_max"] == 0 and meta["style_weight"] == 2.0
    assert meta["style_weight_note"] is None
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["style_weight"] == 2.0


def test_multi_size_gram_targets_are_the_mean_of_each_sizes_targets(
    style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    small = trainer(style_image, photo_dir, tmp_path / "s", style_size=48).style_grams
    large = trainer(style_image, photo_dir, tmp_path / "l").style_grams  # style_size 64
    both = trainer(style_image, photo_dir, tmp_path / "b", style_sizes=[48]).style_grams
    for layer, gram in both.items():
        assert not torch.allclose(
            small[layer], large[layer], rtol=1e-3
        )  # the sizes differ, so the mean means something
        torch.testing.assert_close(gram, (small[layer] + large[layer]) / 2)
