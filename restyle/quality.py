"""How stylized is a stylized photo: the three numbers every bundled model is judged by.

Used by ``bench/quality.py``, the model cards and the tests, so a number in a
model card means exactly what the benchmark table means.

* **style distance**: mean over relu1_1 .. relu5_1 of
  ``||G(out) - G(style)||_F / ||G(style)||_F`` (VGG19, Caffe weights, Gram
  matrices normalised by C*H*W), with the style image resized so its longer
  side equals the output's. 0 is a perfect match of the style statistics; an
  unstylized photo scores about 0.75 against a painting.
* **content distance**: ``||F(out) - F(photo)|| / ||F(photo)||`` at relu4_2,
  the layer Gatys et al. use for content. 0 keeps the photo's features
  exactly; about 1 means the objects are no longer recognisable to VGG.
* **palette distance**: sliced Wasserstein distance between the output's and
  the style image's RGB pixel distributions, divided by the same distance for
  the unstylized photo. 1 means the output's colours are as far from the
  painting's as the photo's were; below 1 it took on the palette. Training's
  palette term is the same distance (``restyle.models.statistics``, which
  says why it is estimated two ways, and how closely the two agree).

Numbers alone mislead (colour speckle can score well on a Gram metric), so
the benchmark also writes side-by-side pictures to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from restyle.models.statistics import gram_matrix, projected_quantiles, quantile_distance, sliced_wasserstein

__all__ = ["CONTENT_LAYER", "STYLE_LAYERS", "QualityScorer", "QualityScores", "sliced_wasserstein"]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]


@dataclass(frozen=True)
class QualityScores:
    style: float
    content: float
    palette: float

    def as_dict(self) -> dict[str, float]:
        return {"style": round(self.style, 4), "content": round(self.content, 4), "palette": round(self.palette, 4)}


class QualityScorer:
    """Scores outputs against one style image; style statistics are computed once per output size."""

    def __init__(self, style_image: np.ndarray):
        from restyle.reference.gatys import vgg19

        self.vgg = vgg19()
        self.style_image = np.asarray(style_image, dtype=np.float32)
        self._style_palette = projected_quantiles(self.style_image)  # once: every output is compared with it
        self._grams: dict[int, dict[str, torch.Tensor]] = {}
        self._photo_ref: np.ndarray | None = None
        self._photo_cache: tuple[torch.Tensor, float] = (torch.zeros(()), 1.0)

    def _features(self, image: np.ndarray, layers) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.vgg(_tensor(image), layers)

    def _style_grams(self, long_side: int) -> dict[str, torch.Tensor]:
        if long_side not in self._grams:
            from restyle.imaging import long_side_size, resize

            style = resize(self.style_image, *long_side_size(*self.style_image.shape[:2], long_side))
            feats = self._features(style, STYLE_LAYERS)
            self._grams[long_side] = {k: gram_matrix(v) for k, v in feats.items()}
        return self._grams[long_side]

    def _photo(self, photo: np.ndarray) -> tuple[torch.Tensor, float]:
        """The photo's content features and its own palette distance, computed once per photo object.

        The benchmark scores several outputs (restyle, peer, the photo itself) of one photo in a row.
        """
        if self._photo_ref is not photo:
            feat = self._features(photo, [CONTENT_LAYER])[CONTENT_LAYER]
            self._photo_cache = (feat, max(self._palette(photo), 1e-9))
            self._photo_ref = photo
        return self._photo_cache

    def _palette(self, image: np.ndarray) -> float:
        """``sliced_wasserstein(image, style image)``, with the style image's side computed once."""
        return quantile_distance(projected_quantiles(image), self._style_palette)

    def score(self, output: np.ndarray, photo: np.ndarray) -> QualityScores:
        """``output`` and ``photo``: HxWx3 float in [0, 1] of the same size; one VGG pass for the output."""
        if output.shape != photo.shape:
            raise ValueError(f"output {output.shape} and photo {photo.shape} differ in size")
        photo_feat, photo_palette = self._photo(photo)
        feats = self._features(output, [*STYLE_LAYERS, CONTENT_LAYER])
        targets = self._style_grams(max(output.shape[:2]))
        style = float(np.mean([float((gram_matrix(feats[k]) - t).norm() / t.norm()) for k, t in targets.items()]))
        content = float((feats[CONTENT_LAYER] - photo_feat).norm() / photo_feat.norm())
        palette = self._palette(output) / photo_palette
        return QualityScores(style=style, content=content, palette=palette)
