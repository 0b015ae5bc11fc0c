"""``restyle live`` on the video pipeline: keys, frames and errors, with a clip as the camera.

No display exists in CI, so the window is the one part replaced: a recording
window that presses scripted keys. Everything else is real: OpenCV reads the
clip as a camera, the exported model stylizes, the stabilizer blends, and the
frames travel the same ``Pipeline`` as ``restyle video``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from restyle.video.live import LiveControls, NoCamera, run_live
from tests.video.clips import moving_scene, write_clip


class RecordingWindow:
    """Shows nothing; keeps every frame and label, answers with the next scripted key (255: none)."""

    def __init__(self, keys: list[str]):
        self.keys = [ord(k) for k in keys]
        self.frames: list[np.ndarray] = []
        self.labels: list[str] = []

    def show(self, view_rgb: np.ndarray, label: str) -> int:
        self.frames.append(view_rgb)
        self.labels.append(label)
        return self.keys.pop(0) if self.keys else 255

    def closed(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the caller's window is the caller's to close")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """The tiny two-style model (``dots``, ``stripes``) beside the bundled styles."""
    folder = tmp_path_factory.mktemp("live-models")
    shutil.copy(model_path, folder / "tiny.onnx")
    return folder


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames of 64x48: more than the pipeline's queues can read ahead before the window quits."""
    return write_clip(tmp_path_factory.mktemp("cam") / "cam.mp4", moving_scene(60, 64, 48), audio=False)


def _controls(models: Path, style: str) -> LiveControls:
    from restyle.runtime.cli import cli_registry

    return LiveControls(cli_registry(str(models)), style, device="cpu")


def test_keys_switch_style_and_stabilizer_each_with_fresh_frame_steps(models: Path) -> None:
    controls = _controls(models, "dots")
    names, start = controls.names, controls.names.index("dots")
    first = controls.frames
    assert first.stabilizer is not None and controls.style_label == "dots"
    assert controls.press(255) and controls.frames is first  # no key: nothing changes
    assert controls.press(ord("n"))
    assert controls.index == (start + 1) % len(names) and controls.style_label == names[controls.index]
    assert controls.frames is not first
    assert controls.press(ord("p")) and controls.style_label == "dots"
    assert controls.press(ord("s")) and controls.frames.stabilizer is None and controls.style_label == "dots"
    assert controls.press(ord("s")) and controls.frames.stabilizer is not None
    assert controls.press(ord("1")) and controls.index == 0
    assert not controls.press(ord("q")) and not controls.press(27)


def test_live_shows_stylized_stabilized_frames_until_q(models: Path, camera: Path, capsys) -> None:
    window = RecordingWindow(["x", "s", "n", "q"])
    assert (
        run_live(str(camera), "dots", max_size=32, device="cpu", models=str(models), verbose=True, window=window) == 0
    )
    assert len(window.frames) == 4  # q on the fourth frame ends it; nothing is shown after
    assert {f.shape for f in window.frames} == {(24, 32, 3)} and window.frames[0].dtype == np.uint8
    assert all(f.std() > 0 for f in window.frames)  # pictures, not blank frames
    assert window.labels[0].startswith("dots ") and not window.labels[-1].startswith("dots ")  # n switched the style
    stages = [line.split()[0] for line in capsys.readouterr().err.strip().splitlines()]
    assert stages == ["stage", "capture", "stylize", "stabilize", "display", "wall"]


def test_a_camera_that_stops_is_a_clear_error(models: Path, tmp_path: Path) -> None:
    short = write_clip(tmp_path / "short.mp4", moving_scene(3, 64, 48), audio=False)
    window = RecordingWindow([])  # never quits: the camera ends first
    with pytest.raises(NoCamera, match="stopped delivering frames"):
        run_live(str(short), "dots", max_size=32, device="cpu", models=str(models), window=window)
    assert len(window.frames) <= 3  # the error stops the run: frames still queued are dropped


def test_a_bad_style_fails_before_the_camera_opens(models: Path) -> None:
    from restyle.errors import UserError

    with pytest.raises(UserError, match="nope"):
        run_live("/no/such/camera", "nope", device="cpu", models=str(models), window=RecordingWindow([]))
