"""``restyle live``: the stylized camera feed in an OpenCV window.

Checks run cheapest first and each failure is one clear line: OpenCV built
without a GUI (the ``opencv-python-headless`` wheel, which this package
depends on so that servers need no X libraries), no display, no camera.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from restyle.errors import UserError
from restyle.imaging import resize, to_float, to_uint8
from restyle.video.pipeline import format_breakdown

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


def run_live(
    camera: str = "0",
    style: str | None = None,
    max_size: int = 640,
    stabilize: bool = True,
    device: str = "auto",
    models: str | None = None,
    verbose: bool = False,
) -> int:
    """The camera loop: capture, stylize, stabilize, show. ``verbose``: print the time per stage on exit."""
    import cv2

    from restyle.runtime import StylizeOptions
    from restyle.runtime.cli import cli_registry
    from restyle.video.shots import ShotNorm
    from restyle.video.stabilize import Stabilizer

    check_gui()
    registry = cli_registry(models)
    names = registry.style_names()
    current, inner = registry.resolve_style(style, provider=device)  # fail on a bad style before the camera
    index = names.index(style) if style in names else -1
    cap = open_camera(camera)
    options = StylizeOptions(max_size=max_size, style_weights=inner)
    stabilizer = Stabilizer() if stabilize else None
    fps, last = 0.0, time.perf_counter()
    busy = dict.fromkeys(("capture", "stylize", "stabilize", "display"), 0.0)
    frames, began = 0, time.perf_counter()

    def clock(stage: str, since: float) -> float:
        now = time.perf_counter()
        busy[stage] += now - since
        return now

    try:
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise NoDisplay(_HEADLESS) from None
        shots: ShotNorm | None = None
        while True:
            t = time.perf_counter()
            ok, bgr = cap.read()
            if not ok:
                raise NoCamera(f"camera {camera!r} stopped delivering frames")
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            t = clock("capture", t)
            if shots is None or shots.stylizer is not current or shots.options is not options:
                shots = ShotNorm(current, options)  # a new style: statistics measured again
            image = to_float(rgb)
            out = shots.stylizer_for(rgb, image).stylize(image, options)
            t = clock("stylize", t)
            if stabilizer is not None:
                small = resize(rgb, *out.shape[:2])
                out = stabilizer(small, out)
            t = clock("stabilize", t)
            view = cv2.cvtColor(to_uint8(out), cv2.COLOR_RGB2BGR)
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1 / max(now - last, 1e-6)
            last = now
            label = (
                f"{names[index] if index >= 0 else current.path.stem}  {fps:.1f} fps  [n/p style, s stabilize, q quit]"
            )
            cv2.putText(view, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            try:
                cv2.imshow(WINDOW, view)
            except cv2.error:  # a build whose GUI backend reports itself but does not work
                raise NoDisplay(_HEADLESS) from None
            key = cv2.waitKey(1) & 0xFF
            clock("display", t)
            frames += 1
            if key in (ord("q"), 27) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                break
            step = {ord("n"): 1, ord("p"): -1}.get(key, 0)
            if ord("1") <= key <= ord("9") and key - ord("1") < len(names):
                index, step = key - ord("1"), 0
                current, inner = registry.resolve_style(names[index], provider=device)
                options = StylizeOptions(max_size=max_size, style_weights=inner)
            if step and names:
                index = (index + step) % len(names)
                current, inner = registry.resolve_style(names[index], provider=device)
                options = StylizeOptions(max_size=max_size, style_weights=inner)
            if step or ord("1") <= key <= ord("9"):
                stabilizer = Stabilizer() if stabilizer is not None else None  # a new style is a new scene
            if key == ord("s"):
                stabilizer = None if stabilizer is not None else Stabilizer()
    finally:
        cap.release()
        cv2.destroyAllWindows()
        if verbose and frames:
            print(format_breakdown(busy, frames, time.perf_counter() - began), file=sys.stderr)
    return 0
