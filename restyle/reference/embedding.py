"""Where the classifier puts images: nearest neighbours and a 2-D map of penultimate features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from restyle.errors import UserError

PROJECTIONS = ("tsne", "pca")


class Embedding:
    """``embed(images)`` -> N x D penultimate features; then :meth:`neighbours` and :meth:`project`."""

    def __init__(self, model: torch.nn.Module, batch: int = 8):
        self.model, self.batch = model, batch

    @torch.no_grad()
    def embed(self, images: Sequence[Tensor]) -> Tensor:
        x = torch.cat(list(images))
        return torch.cat([self.model.features(x[i : i + self.batch]) for i in range(0, len(x), self.batch)])

    @staticmethod
    def neighbours(features: Tensor, k: int = 4) -> Tensor:
        """N x k indices of the nearest other images by L2 distance (the image itself excluded)."""
        d = torch.cdist(features, features)
        d.fill_diagonal_(float("inf"))
        return d.topk(min(k, len(features) - 1), largest=False).indices

    @staticmethod
    def project(features: Tensor, method: str = "tsne", seed: int = 0) -> np.ndarray:
        """N x 2 coordinates: t-SNE (perplexity adapted to small folders) or PCA."""
        if method not in PROJECTIONS:
            raise UserError(f"projection must be one of {', '.join(PROJECTIONS)}, not {method!r}")
        f = features.numpy().astype(np.float64)
        if len(f) < 3:
            raise UserError(f"an embedding map needs at least 3 images, got {len(f)}")
        if method == "pca":
            from sklearn.decomposition import PCA

            return PCA(n_components=2, random_state=seed).fit_transform(f)
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(f) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(f)
