"""Shared fixtures: small images generated here or shipped by scikit-image; never ../shared."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(min(2, os.cpu_count() or 1))
# Every API app may open the job queue; keep the tests' queues (and any old-queue import) out of ~/.cache.
os.environ.setdefault("RESTYLE_VIDEO_JOBS_DIR", tempfile.mkdtemp(prefix="restyle-test-legacy-jobs-"))
os.environ.setdefault("RESTYLE_STORAGE_ROOT", tempfile.mkdtemp(prefix="restyle-test-jobs-"))

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PHOTO = REPO / "restyle" / "assets" / "sample.jpg"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        action="store_true",
        default=False,
        help="browser tests write their screenshots into docs/screenshots/ (off by default, so the suite never rewrites docs)",
    )


def _skimage(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real photos from scikit-image, in a nested tree with mixed formats."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    Image.fromarray(_skimage("astronaut")).resize((160, 160)).save(root / "astronaut.jpg")
    Image.fromarray(_skimage("coffee")).resize((200, 150)).save(root / "sub" / "coffee.png")
    Image.fromarray(_skimage("chelsea")).resize((180, 120)).save(root / "chelsea.webp")
    Image.fromarray(_skimage("rocket")).resize((120, 180)).save(root / "sub" / "rocket.jpg")
    return root


@pytest.fixture(scope="session")
def style_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic 'painting': coloured stripes and blobs with strong texture statistics."""
    rng = np.random.default_rng(0)
    h = w = 96
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack(
        [
            0.5 + 0.5 * np.sin(xx / 3.0),
            0.5 + 0.5 * np.sin((xx + yy) / 5.0),
            0.5 + 0.5 * np.cos(yy / 4.0),
        ],
        axis=2,
    )
    img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
    path = tmp_path_factory.mktemp("style") / "stripes.png"
    Image.fromarray((img * 255).astype(np.uint8)).save(path)
    return path
