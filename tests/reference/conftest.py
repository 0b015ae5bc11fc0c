"""Shared fixtures: real photos from scikit-image as 1x3xHxW tensors in [0, 1].

Budgets are kept small (48-64 px optimizations, tens of steps, coarse
occlusion grids) and the expensive objects (classifier, VGG19 trunks, decoded
photos, attribution maps) are built once per session or module, so the
reference suite stays well under a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import pytest
import skimage.data
import torch

from restyle.models.classifier import load_classifier, to_input


@functools.cache
def _decoded(name: str) -> np.ndarray:
    """scikit-image decodes its bundled files on every call; tests ask for the same few photos many times."""
    return getattr(skimage.data, name)().astype(np.float32) / 255.0


def photo(name: str, size: int | None = 224) -> torch.Tensor:
    """A scikit-image photo as 1x3xSxS in [0, 1] (``size=None`` keeps its own size); a fresh tensor each call."""
    return to_input(_decoded(name), size).clone()  # never a view of the cached array


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run the reference tests on one intra-op thread, restoring the suite's setting afterwards.

    Their tensors are tiny (48-224 px, batch 1), so a second thread gains
    little even on a quiet machine; on a shared CPU OpenMP's spin-waiting
    for a descheduled peer thread made the same work 10-40x slower (measured:
    relu2_2 inversion 48 px, 30 steps: 0.7 s on one thread, 11 s on two).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
