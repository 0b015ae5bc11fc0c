"""The quality metrics behind bench/quality.py and the model cards mean what their docs say."""

from __future__ import annotations

import numpy as np
import pytest

from restyle.imaging import decode_image, fit_max_size, resize
from restyle.quality import QualityScorer, sliced_wasserstein
from tests.conftest import REPO, SAMPLE_PHOTO

PAINTING = REPO / "restyle" / "styles" / "starry_night.jpg"


def test_sliced_wasserstein_is_a_distance_between_colour_distributions() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((2000, 3))
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    assert sliced_wasserstein(a, rng.permutation(a)) == pytest.approx(0.0, abs=1e-12)  # order does not matter
    near, far = np.clip(a + 0.05, 0, 1), np.clip(a + 0.3, 0, 1)
    assert 0 < sliced_wasserstein(a, near) < sliced_wasserstein(a, far)
    assert sliced_wasserstein(a, far) == pytest.approx(sliced_wasserstein(far, a))


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    return QualityScorer(decode_image(PAINTING))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return fit_max_size(decode_image(SAMPLE_PHOTO), 128)


def test_the_unstylized_photo_is_the_baseline(scorer: QualityScorer, photo: np.ndarray) -> None:
    s = scorer.score(photo, photo)
    assert s.content == 0.0 and s.palette == pytest.approx(1.0)
    assert s.style > 0.5  # far from a painting's statistics


def test_the_painting_itself_scores_as_perfectly_stylized(scorer: QualityScorer, photo: np.ndarray) -> None:
    painting = resize(scorer.style_image, *photo.shape[:2])
    s = scorer.score(painting, photo)
    base = scorer.score(photo, photo)
    assert s.style < 0.3 * base.style
    assert s.palette < 0.3
    assert s.content > 0.5  # the photo's objects are gone


def test_grey_output_is_worse_than_the_photo_on_palette(scorer: QualityScorer, photo: np.ndarray) -> None:
    grey = np.full_like(photo, 0.5)  # a washed-out, monochrome result
    assert scorer.score(grey, photo).palette > 1.0


def test_sizes_must_match(scorer: QualityScorer, photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match="differ in size"):
        scorer.score(photo[:-2], photo)
