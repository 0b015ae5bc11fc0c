"""The quality metrics behind bench/quality.py and the model cards mean what their docs say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restyle.imaging import decode_image, fit_max_size, resize
from restyle.models.statistics import palette_loss, palette_targets, score_directions, sliced_wasserstein
from restyle.quality import QualityScorer
from restyle.quality import sliced_wasserstein as quality_sliced_wasserstein
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


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]


@pytest.mark.parametrize("size", [64, 128])
def test_training_palette_loss_is_the_palette_distance_the_scores_report(size: int) -> None:
    """Training's palette term and the score's palette distance estimate one quantity (restyle.models.statistics).

    With the score's own directions the two estimators agree to 0.001 on the bundled photo and painting, from
    the photo itself (1) through a half blend to the painting's pixels (near 0) and a grey output (above 1).
    """
    painting = decode_image(PAINTING)
    small = fit_max_size(decode_image(SAMPLE_PHOTO), size)
    style = resize(painting, *small.shape[:2])
    dirs = torch.from_numpy(score_directions()).float()
    targets = palette_targets(_nchw(painting)[0].reshape(3, -1).T, dirs)[None]
    baseline = sliced_wasserstein(small, painting)
    outputs = {"photo": small, "blend": 0.5 * small + 0.5 * style, "painting": style, "grey": np.full_like(small, 0.5)}
    for name, out in outputs.items():
        training = float(palette_loss(_nchw(out), _nchw(small), targets, dirs))
        score = sliced_wasserstein(out, painting) / baseline
        assert training == pytest.approx(score, abs=2e-3), name
    assert quality_sliced_wasserstein is sliced_wasserstein  # the score reports the shared one


def test_projected_quantiles_are_numpys_linear_quantiles_of_the_projections() -> None:
    """The one-sort quantiles equal ``np.quantile``'s (the definition the scores were first published with)."""
    from restyle.models.statistics import projected_quantiles, score_directions

    pixels = np.random.default_rng(3).random((37, 29, 3)) ** 2
    q = (np.arange(16) + 0.5) / 16
    expected = np.quantile(pixels.reshape(-1, 3) @ score_directions(8, 3).T, q, axis=0).T
    np.testing.assert_allclose(projected_quantiles(pixels, projections=8, quantiles=16), expected, rtol=0, atol=1e-12)
