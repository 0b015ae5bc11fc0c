"""The screenshots of docs/api.md: the web page at / with the bundled styles on real Kodak photos.

    .venv/bin/python scripts/screenshots.py --out docs/screenshots      (or: make screenshots)

Starts a real ``restyle serve`` on a free loopback port with the bundled models
(``restyle/styles/classics.onnx``, six styles), an embedded job worker and a
temporary storage root, then drives Debian's Chromium (``/usr/bin/chromium``,
installed by ``.ci/install-browser.sh``) with Playwright through the page's
three tabs, as a person would:

- ``photo-before-after.png``: ``restyle/assets/kodim08.jpg`` in ``starry_night``, the before/after slider, 1200 px wide;
- ``photo-narrow-side-by-side.png``: the same photo in ``great_wave``, side by side (stacked), 390 px wide (a phone);
- ``video-result.png``: a 2 s, 480x270 clip zooming over ``restyle/assets/sample.jpg`` (made here with PyAV),
  stylized by a real video job in ``woman-with-hat-matisse``, paused in the page's player;
- ``new-style-training.png``: a new style trained for real on the bundled ``classics`` base from *The Starry
  Night* (``../shared/data/styles/starry_night.jpg`` when it is there, else ``restyle/assets/starry_night_512.jpg``),
  on the four Kodak photos of the repository, caught while it trains, at its first preview (step 10). The
  training is a short one (``TRAINING`` below, through ``RESTYLE_STYLE_*``; the default recipe takes ten minutes or
  more); its first preview came after about four minutes on a busy 2-core CPU, the whole run after five.

The browser tests (``tests/api/test_api_browser.py``) check the same flows against tiny random models; this
script only takes the pictures. Every PNG is optimised with Pillow and written atomically into ``--out``.
Exits 2 with one line when Chromium or Playwright is missing.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "restyle" / "assets"
PHOTO = ASSETS / "kodim08.jpg"  # half-timbered houses (Kodak)
VIDEO_PHOTO = ASSETS / "sample.jpg"  # parrots (Kodak)
# Training photos of the new style: the four Kodak photos in the repository (the preview shows all four).
TRAINING_PHOTOS = [ASSETS / "kodim08.jpg", ASSETS / "sample.jpg", *sorted((ROOT / "docs/gallery/inputs").glob("*.jpg"))]
# The new style's painting: the full-size image next to the repository when there is one, else the bundled copy.
SHARED_STYLE = ROOT.parent / "shared" / "data" / "styles" / "starry_night.jpg"
STYLE_IMAGE = SHARED_STYLE if SHARED_STYLE.is_file() else ASSETS / "starry_night_512.jpg"
NEW_STYLE = "my_starry_night"
PHOTO_STYLE, NARROW_STYLE, VIDEO_STYLE = "starry_night", "great_wave", "woman-with-hat-matisse"
CHROMIUM = "/usr/bin/chromium"
ARGS = [  # as tests/api/test_api_browser.py
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP, PHONE = {"width": 1200, "height": 800}, {"width": 390, "height": 844}
# A short training on the bundled base: batch 2 of 128 px crops, the preview every 10 steps (restyle.jobs.tasks.style).
TRAINING = {"steps": 60, "batch_size": 2, "image_size": 128, "style_size": 256}
SHOOT_AT_STEP = 10  # the screenshot waits for the preview of this step, the first (or the end of the training)
MAX_BYTES = 300_000  # above this a PNG is reduced to a 256-colour palette


def fail(message: str) -> NoReturn:
    print(f"screenshots: {message}", file=sys.stderr)
    raise SystemExit(2)


# -- server ---------------------------------------------------------------------------------------------------
class Server:
    """``python -m restyle serve --port 0`` with the bundled models; the bound port read from uvicorn's banner."""

    def __init__(self, storage: Path, photos: Path, timeout: float = 300.0):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTYLE_")}
        env.update(
            {
                "RESTYLE_PROVIDER": "cpu",
                "RESTYLE_STORAGE_ROOT": str(storage),  # the job queue, job files and the new style: all temporary
                "RESTYLE_JOB_WORKERS": "1",  # the video job and the training run on an embedded worker
                "RESTYLE_STYLE_BASE": "classics",  # the bundled base (restyle.recipes.DEFAULT_BASE)
                "RESTYLE_STYLE_PHOTOS": str(photos),
                "RESTYLE_STYLE_EXPORTER": "torchscript",
                **{f"RESTYLE_STYLE_{key.upper()}": str(value) for key, value in TRAINING.items()},
            }
        )
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restyle", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        self.url = ""
        for line in self.proc.stdout:
            self.log.append(line)
            match = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
            if match:
                self.url = match.group(1)
                break
            if time.monotonic() > deadline:
                break
        if not self.url:
            self.stop()
            raise RuntimeError("restyle serve did not start:\n" + "".join(self.log[-30:]))
        # Keep draining the log so the pipe never fills and blocks the server.
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True).start()  # type: ignore[arg-type]
        while time.monotonic() < deadline:  # the models warmed up, the worker beating
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=10) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("restyle serve did not become ready:\n" + "".join(self.log[-30:]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- inputs ---------------------------------------------------------------------------------------------------
def make_clip(
    path: Path, source: Path, seconds: float = 2.0, fps: int = 24, size: tuple[int, int] = (480, 270)
) -> Path:
    """A slow zoom and pan over ``source``, H.264 at ``size``: a real photo moving, as a phone video would."""
    import av
    import numpy as np
    from PIL import Image

    width, height = size
    with Image.open(source) as img:
        photo = img.convert("RGB")
    frames = int(seconds * fps)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "medium", "crf": "20"}
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(frames):
            t = i / max(1, frames - 1)
            # The crop keeps the frame's aspect ratio; it narrows from all to 85 % of the photo while drifting right.
            crop_w = photo.width * (1.0 - 0.15 * t)
            crop_h = crop_w * height / width
            left = (photo.width - crop_w) * (0.2 + 0.6 * t)
            top = (photo.height - crop_h) * 0.45
            box = (left, top, left + crop_w, top + crop_h)
            rgb = np.asarray(photo.resize((width, height), Image.Resampling.LANCZOS, box=box))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# -- pictures -------------------------------------------------------------------------------------------------
def optimised_png(png: bytes) -> bytes:
    """Pillow's ``optimize=True``; reduced to a 256-colour palette only when that alone leaves it over MAX_BYTES.

    The palette is median cut, else (still too large) fast octree; the smallest one wins when none fits.
    """
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        rgb = img.convert("RGB")
    smallest = b""
    for reduce in (
        lambda: rgb,
        lambda: rgb.quantize(256, method=Image.Quantize.MEDIANCUT),
        lambda: rgb.quantize(256, method=Image.Quantize.FASTOCTREE),
    ):
        out = io.BytesIO()
        reduce().save(out, "PNG", optimize=True)
        data = out.getvalue()
        if len(data) <= MAX_BYTES:
            return data
        if not smallest or len(data) < len(smallest):
            smallest = data
    return smallest


def save_screenshot(page: Any, out: Path, name: str) -> None:
    from PIL import Image

    from restyle.atomic import atomic_write_bytes

    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring on the last click
    page.mouse.move(0, 0)  # no hover highlight either
    data = optimised_png(page.screenshot(full_page=True, animations="disabled"))
    target = out / f"{name}.png"
    atomic_write_bytes(target, data)
    with Image.open(io.BytesIO(data)) as img:
        size = f"{img.width}x{img.height}, {img.mode}"
    print(f"wrote {target} ({size}, {len(data) // 1024} KB)", flush=True)


# -- the page -------------------------------------------------------------------------------------------------
ALL_IMAGES_LOADED = """() => [...document.images].filter(i => i.checkVisibility())
    .every(i => i.complete && i.naturalWidth > 0)"""


def open_page(browser: Any, server: Server) -> Any:
    page = browser.new_page()
    page.set_viewport_size(DESKTOP)
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#styles .style').length >= 6")
    return page


def wait_thumbnails(page: Any, box: str) -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll('{box} .style img')].every(i => !i.hidden && i.naturalWidth > 0)",
        timeout=60_000,
    )


def shoot_photo(page: Any, out: Path) -> None:
    from playwright.sync_api import expect

    wait_thumbnails(page, "#styles")
    page.locator(f'#styles .style[data-style="{PHOTO_STYLE}"]').click()
    page.set_input_files("#photo", str(PHOTO))
    expect(page.locator("#result-caption")).to_contain_text(PHOTO_STYLE, timeout=180_000)
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "slider")
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
    save_screenshot(page, out, "photo-before-after")

    # A second style, side by side, on a phone: the two images stack.
    page.locator(f'#styles .style[data-style="{NARROW_STYLE}"]').click()
    expect(page.locator("#result-caption")).to_contain_text(NARROW_STYLE, timeout=180_000)
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    page.locator("#view-side").click()
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "side")
    page.set_viewport_size(PHONE)
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
    save_screenshot(page, out, "photo-narrow-side-by-side")


def shoot_video(page: Any, out: Path, clip: Path) -> None:
    from playwright.sync_api import expect

    page.locator("#tab-video").click()
    wait_thumbnails(page, "#video-styles")
    page.locator(f'#video-styles .style[data-style="{VIDEO_STYLE}"]').click()
    page.set_input_files("#video-file", str(clip))
    page.locator("#video-go").click()
    expect(page.locator("#video-result")).to_be_visible(timeout=600_000)
    expect(page.locator("#video-status")).to_contain_text("Done")
    page.wait_for_function("document.getElementById('video-result').readyState >= 2", timeout=60_000)
    # Played for a second, then paused: the player shows that frame, with its controls and no loading spinner.
    page.evaluate("document.getElementById('video-result').play()")
    page.wait_for_function("document.getElementById('video-result').currentTime >= 1", timeout=60_000)
    page.evaluate("document.getElementById('video-result').pause()")
    page.wait_for_function("document.getElementById('video-result').readyState >= 3", timeout=30_000)
    page.wait_for_timeout(1_000)  # the controls settle
    save_screenshot(page, out, "video-result")


def shoot_new_style(page: Any, out: Path) -> None:
    from playwright.sync_api import expect

    page.locator("#tab-new-style").click()
    page.set_input_files("#new-style-image", str(STYLE_IMAGE))
    expect(page.locator("#new-style-thumb")).to_be_visible()
    page.locator("#new-style-name").fill(NEW_STYLE)  # the guess from the file name is a bundled style's name
    page.locator("#new-style-go").click()
    expect(page.locator("#new-style-progress")).to_be_visible(timeout=60_000)
    started = time.monotonic()
    # The preview of step SHOOT_AT_STEP (while the training still runs), or the end of the training.
    page.wait_for_function(
        """(at) => {
            const m = document.getElementById('training-caption').textContent.match(/after step (\\d+)/);
            const status = document.getElementById('new-style-status');
            if (status.classList.contains('error') && !/retrying/.test(status.textContent)) return true;
            return (m && Number(m[1]) >= at) || /is ready/.test(status.textContent);
        }""",
        arg=SHOOT_AT_STEP,
        timeout=1_500_000,
        polling=500,
    )
    status = page.locator("#new-style-status")
    if "error" in (status.get_attribute("class") or ""):
        raise RuntimeError(f"the training failed: {status.text_content()}")
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
    print(f"new style: {status.text_content()} after {time.monotonic() - started:.0f} s", flush=True)
    save_screenshot(page, out, "new-style-training")


# -- main -----------------------------------------------------------------------------------------------------
SHOTS = ("photo", "video", "new-style")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder of the PNGs")
    parser.add_argument(
        "--chromium",
        default=os.environ.get("RESTYLE_TEST_CHROMIUM", CHROMIUM),
        help=f"the browser (default {CHROMIUM})",
    )
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=list(SHOTS), help="take only these")
    args = parser.parse_args(argv)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        fail("Playwright is missing: pip install -e '.[dev]' (the Python package only; the browser is Debian's)")
    if not Path(args.chromium).is_file():
        fail(
            f"Chromium not found at {args.chromium}: install it with .ci/install-browser.sh (apt-get install chromium)"
        )

    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="restyle-screenshots-") as tmp_name:
        tmp = Path(tmp_name)
        photos = tmp / "photos"
        photos.mkdir()
        for path in TRAINING_PHOTOS:
            shutil.copy(path, photos / path.name)
        clip = make_clip(tmp / "parrots.mp4", VIDEO_PHOTO)
        server = Server(tmp / "jobs", photos)
        print(
            f"restyle serve at {server.url} (bundled models) ready after {time.monotonic() - begun:.0f} s", flush=True
        )
        shots: dict[str, Callable[[Any], None]] = {
            "photo": lambda page: shoot_photo(page, args.out),
            "video": lambda page: shoot_video(page, args.out, clip),
            "new-style": lambda page: shoot_new_style(page, args.out),
        }
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch_persistent_context(
                    str(tmp / "chromium-profile"),
                    executable_path=args.chromium,
                    headless=True,
                    args=ARGS,
                    viewport=DESKTOP,
                )
                try:
                    for name in SHOTS:
                        if name in args.only:
                            start = time.monotonic()
                            page = open_page(browser, server)
                            shots[name](page)
                            page.close()
                            print(f"{name}: {time.monotonic() - start:.0f} s", flush=True)
                finally:
                    browser.close()
        except Exception:
            print("restyle serve's last lines:\n" + "".join(server.log[-30:]), file=sys.stderr)
            raise
        finally:
            server.stop()
    print(f"done in {time.monotonic() - begun:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
