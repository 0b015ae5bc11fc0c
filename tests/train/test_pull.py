"""The style pull's reference photos: fixed crops, so a painting's pull does not depend on the training folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restyle.train.pull import REFERENCE_PHOTOS, reference_batch
from tests.train.test_style_pull import trainer


def test_the_reference_batch_is_the_same_crops_every_call_from_both_photos() -> None:
    first, again = reference_batch(64), reference_batch(64)
    assert first.shape == (8, 3, 64, 64) and torch.equal(first, again)
    assert all(p.is_file() for p in REFERENCE_PHOTOS) and len(REFERENCE_PHOTOS) == 2
    # alternating photos: the parrots' crops are more saturated than the houses' (chroma: max - min channel)
    chroma = (first.amax(1) - first.amin(1)).mean((1, 2))
    assert chroma[0::2].mean() > chroma[1::2].mean()


def test_a_paintings_pull_is_the_same_whatever_photos_the_run_trains_on(
    style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(other / f"noise{i}.png")
    on_photos = trainer(style_image, photo_dir, tmp_path / "a").style_pull()
    on_noise = trainer(style_image, other, tmp_path / "b").style_pull()
    assert on_photos == on_noise > 0
