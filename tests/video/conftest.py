"""Fixtures for the video tests: a tiny exported model and generated clips (never ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.video.clips import moving_scene, write_clip


@pytest.fixture(scope="session")
def model_path() -> Path:
    """A random 'fast' network exported to ONNX (shared with the export and runtime tests)."""
    from tests.export.models import exported

    return exported("fast")


@pytest.fixture(scope="session")
def stylizer(model_path: Path):
    from restyle.runtime import Registry

    return Registry().resolve(str(model_path), provider="cpu", threads=1)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x48, 12 frames at 12 fps, with an AAC audio track."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    return write_clip(path, moving_scene(12, 64, 48), fps=12, audio=True)
