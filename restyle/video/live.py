"""``restyle live``: the stylized camera feed in an OpenCV window.

Checks run cheapest first and each failure is one clear line: OpenCV built
without a GUI (the ``opencv-python-headless`` wheel, which this package
depends on so that servers need no X libraries), no display, no camera.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from restyle.errors import Cancelled, UserError
from restyle.imaging import resize, to_uint8
from restyle.runtime import StylizeOptions
from restyle.runtime.registry import Registry
from restyle.video.frames import FrameStylizer
from restyle.video.io import even_size
from restyle.video.pipeline import Pipeline, format_breakdown

WINDOW = "restyle live"


class NoDisplay(UserError):
    exit_code = 3


class NoCamera(UserError):
    exit_code = 3


def check_gui() -> None:
    """Raise ``NoDisplay`` unless OpenCV can open a window here."""
    import cv2

    if not _built_with_gui(cv2):
        raise NoDisplay(_HEADLESS)
    from restyle.settings import DisplayEnv

    if sys.platform.startswith("linux") and not DisplayEnv().present:
        # Checked before any window call: GTK builds may abort the process when there is no display.
        raise NoDisplay("no display: $DISPLAY is not set (run it in a desktop session, or with X forwarding)")
    try:
        cv2.namedWindow("restyle-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("restyle-probe")
    except cv2.error as exc:
        raise NoDisplay(f"OpenCV cannot open a window: {str(exc).strip().splitlines()[-1]}") from None


_HEADLESS = (
    "this OpenCV has no GUI support (opencv-python-headless); for 'restyle live' run: "
    "pip uninstall -y opencv-python-headless && pip install opencv-python"
)


def _built_with_gui(cv2) -> bool:  # noqa: ANN001 - the module
    """The headless wheel reports ``GUI: NONE`` (and its cv2.imshow raises 'not implemented')."""
    lines = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    return not (lines and lines[0].split(":", 1)[1].strip().upper() == "NONE")


def open_camera(camera: str):  # noqa: ANN201 - cv2.VideoCapture
    import cv2

    source: int | str = int(camera) if camera.isdigit() else camera
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise NoCamera(f"cannot open camera {camera!r} (no such device, or it is in use)")
    ok, _ = cap.read()
    if not ok:
        cap.release()
        raise NoCamera(f"camera {camera!r} opened but delivers no frames")
    return cap


class LiveControls:
    """What the keys change, in one place: the style (n / p, 1-9) and the stabilizer (s); q or Esc quits.

    Every change builds a new ``FrameStylizer``: a new style is a new scene
    for the stabilizer and the per-shot statistics alike.
    """

    def __init__(self, registry: Registry, style: str | None, device: str = "auto", stabilize: bool = True):
        self.registry = registry
        self.device = device
        self.stabilize = stabilize
        self.names = registry.style_names()
        self.index = self.names.index(style) if style in self.names else -1
        self.spec = style
        self.frames = self._select(style)  # fails on a bad style before the camera opens

    def _select(self, spec: str | None) -> FrameStylizer:
        stylizer, inner = self.registry.resolve_style(spec, provider=self.device)
        self.spec = spec
        return FrameStylizer(stylizer, StylizeOptions(style_weights=inner), stabilize=self.stabilize)

    @property
    def style_label(self) -> str:
        return self.names[self.index] if self.index >= 0 else self.frames.stylizer.path.stem

    def press(self, key: int) -> bool:
        """Apply one key (255: none); False when it asks to quit."""
        if key in (ord("q"), 27):
            return False
        step = {ord("n"): 1, ord("p"): -1}.get(key, 0)
        if step and self.names:
            self.index = (self.index + step) % len(self.names)
            self.frames = self._select(self.names[self.index])
        elif ord("1") <= key <= ord("9") and key - ord("1") < len(self.names):
            self.index = key - ord("1")
            self.frames = self._select(self.names[self.index])
        elif key == ord("s"):
            self.stabilize = not self.stabilize
            self.frames = self._select(self.spec)
        return True


class Window(Protocol):
    """Where live frames go: ``show`` returns the key pressed meanwhile (255: none); ``closed`` by the user."""

    def show(self, view_rgb: np.ndarray, label: str) -> int: ...

    def closed(self) -> bool: ...

    def close(self) -> None: ...


class OpenCVWindow:
    """The OpenCV window of ``restyle live`` (its calls all happen on the thread that runs the pipeline's sink)."""

    def __init__(self) -> None:
        import cv2

        self.cv2 = cv2
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise NoDisplay(_HEADLESS) from None

    def show(self, view_rgb: np.ndarray, label: str) -> int:
        cv2 = self.cv2
        view = cv2.cvtColor(view_rgb, cv2.COLOR_RGB2BGR)
        cv2.putText(view, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        try:
            cv2.imshow(WINDOW, view)
        except cv2.error:  # a build whose GUI backend reports itself but does not work
            raise NoDisplay(_HEADLESS) from None
        return cv2.waitKey(1) & 0xFF

    def closed(self) -> bool:
        return self.cv2.getWindowProperty(WINDOW, self.cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        self.cv2.destroyAllWindows()


def camera_frames(cap, camera: str, max_size: int) -> Iterator[np.ndarray]:  # noqa: ANN001 - cv2.VideoCapture
    """RGB uint8 frames at the output size (long side ``max_size``, even sides), read in the pipeline's source thread."""
    size: tuple[int, int] | None = None
    while True:
        ok, bgr = cap.read()
        if not ok:
            raise NoCamera(f"camera {camera!r} stopped delivering frames")
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        if size is None:
            size = even_size(rgb.shape[1], rgb.shape[0], max_size)
        yield rgb if rgb.shape[1::-1] == size else resize(rgb, size[1], size[0])


def run_live(
    camera: str = "0",
    style: str | None = None,
    max_size: int = 640,
    stabilize: bool = True,
    device: str = "auto",
    models: str | None = None,
    verbose: bool = False,
    window: Window | None = None,
) -> int:
    """The camera loop on the video pipeline: capture -> stylize -> stabilize in threads, shown on this thread.

    The same ``FrameStylizer`` steps as ``restyle video`` (``restyle.video.frames``), overlapped the same way
    (``Pipeline``), so the camera runs at the speed ``bench video_speed`` measures for files. ``window``: where
    frames go (default: an OpenCV window, after ``check_gui``). ``verbose``: the time per stage on exit.
    """
    from restyle.runtime.cli import cli_registry

    if window is None:
        check_gui()
    controls = LiveControls(cli_registry(models), style, device, stabilize)
    cap = open_camera(camera)
    quit_ = threading.Event()  # set by this loop's own sink: the pipeline only reads it
    shown, fps, last = 0, 0.0, time.perf_counter()

    def stylize(rgb: np.ndarray) -> tuple[np.ndarray, FrameStylizer, np.ndarray]:
        steps = controls.frames  # a frame is stylized and stabilized by the same steps, even across a style switch
        return rgb, steps, steps.stylize(rgb)

    def stabilize_(item: tuple[np.ndarray, FrameStylizer, np.ndarray]) -> np.ndarray:
        rgb, steps, out = item
        return steps.stabilize(rgb, out)

    stabilize_.__name__ = "stabilize"

    def show(out: np.ndarray) -> None:
        nonlocal shown, fps, last
        now = time.perf_counter()
        fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1 / max(now - last, 1e-6)
        last = now
        label = f"{controls.style_label}  {fps:.1f} fps  [n/p style, s stabilize, q quit]"
        key = shown_window.show(to_uint8(out), label)
        shown += 1
        if not controls.press(key) or shown_window.closed():
            quit_.set()

    began = time.perf_counter()
    source = camera_frames(cap, camera, max_size)
    stages = [stylize, stabilize_]
    pipeline = Pipeline(source, stages, show, cancel=quit_, sink_in_caller=True, ends=("capture", "display"))
    shown_window: Window | None = None
    try:
        shown_window = window or OpenCVWindow()
        try:
            pipeline.run()
        except Cancelled:
            if not quit_.is_set():
                raise
    finally:
        cap.release()
        if shown_window is not None and window is None:
            shown_window.close()
        if verbose and shown:
            print(format_breakdown(pipeline.busy, shown, time.perf_counter() - began), file=sys.stderr)
    return 0
