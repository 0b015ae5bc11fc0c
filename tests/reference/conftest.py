"""Shared fixtures: real photos from scikit-image as 1x3xHxW tensors in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from restyle.models.classifier import load_classifier, to_input


def photo(name: str, size: int | None = 224) -> torch.Tensor:
    return to_input(getattr(skimage.data, name)().astype(np.float32) / 255.0, size)


@pytest.fixture(scope="session")
def classifier():
    return load_classifier()


@pytest.fixture(scope="session")
def chelsea() -> torch.Tensor:
    return photo("chelsea")


# Regions of chelsea at 224x224 (the photo is squashed from 451x300): the cat's right eye and cheek,
# and the out-of-focus background strip along the right edge; equal areas.
FACE = (slice(72, 152), slice(120, 200))
BACKGROUND = (slice(40, 224), slice(190, 224))
