"""End to end: the web page at / in headless Chromium (Debian's package) driven by Playwright.

Every flow runs against one real ``restyle serve`` (real models, real photo
inference, a real embedded job worker for the video tab and for training new
styles). The "New style" tab is tried twice: once end to end against the real
``/v1/styles`` (a real, tiny training on the worker), and once against answers
served with Playwright's request interception (``page.route``), which can
hold each training phase (queued, two previews, ready) as long as the
assertions need; the style list, the previews and ``/v1/stylize`` behind it
stay real there too.

Skipped, with the reason, only when /usr/bin/chromium is absent; CI runs
``.ci/install-browser.sh`` first so it always runs there. Nothing outside tmp
is written: the screenshots of docs/api.md (docs/screenshots/) are taken by
``scripts/screenshots.py`` (``make screenshots``) against the bundled styles
and a real photo, not by these tests and their tiny random models.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.api.conftest import SAMPLE, Server, export_style_base, start_server, stop_server

CHROMIUM = os.environ.get("RESTYLE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Longer than a thumbnail is wide (the old page showed "starry_night_cl"); valid: at most 64 characters.
LONG_NAME = "starry_night_over_the_harbour_at_dusk_with_a_very_long_name"
MAX_SIZE = 256
VIDEO_SIZE = 96

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"Chromium not found at {CHROMIUM}: install it with .ci/install-browser.sh (apt-get install chromium)",
    ),
]

# Every visible <img> has loaded pixels: no broken-image icon, no alt text standing in for a picture.
NO_BROKEN_IMAGES = """() => [...document.images].filter(i => i.checkVisibility())
    .every(i => i.complete && i.naturalWidth > 0)"""
# An <img>'s pixels, scaled to 8x8, to tell one image from the next.
PIXELS = """(img) => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 8;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, 8, 8);
    return [...ctx.getImageData(0, 0, 8, 8).data];
}"""
BROKEN_IMAGES = """() => [...document.images].filter(i => i.checkVisibility() && !(i.complete && i.naturalWidth > 0))
    .map(i => i.id || i.alt || i.src)"""


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web_models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny seeded models (ink and fire inside duo, mosaic) plus a user model with a long name.

    ``duo`` is a base new styles can be trained on (distinct per-style norms): the real "New style" flow uses it.
    """
    root = tmp_path_factory.mktemp("web-models")
    for path in models_dir.glob("*.onnx"):
        shutil.copy(path, root / path.name)
    export_style_base(root / "duo.onnx", ["ink", "fire"], tmp_path_factory.mktemp("web-base"))
    shutil.copy(models_dir / "mosaic.onnx", root / f"{LONG_NAME}.onnx")
    return root


@pytest.fixture(scope="module")
def server(web_models: Path) -> Iterator[Server]:
    env = {
        "RESTYLE_MAX_SIZE": str(MAX_SIZE),
        "RESTYLE_PREVIEW_SIZE": "96",
        "RESTYLE_PROVIDER": "cpu",
        "RESTYLE_JOB_WORKERS": "1",  # the video tab needs a real worker; idle, it costs nothing
        "RESTYLE_VIDEO_MAX_SIZE": str(VIDEO_SIZE),
        # New styles train for real on that worker, tiny: 2 steps of one 32 px crop on base "duo".
        "RESTYLE_STYLE_BASE": "duo",
        "RESTYLE_STYLE_STEPS": "2",
        "RESTYLE_STYLE_BATCH_SIZE": "1",
        "RESTYLE_STYLE_IMAGE_SIZE": "32",
        "RESTYLE_STYLE_STYLE_SIZE": "32",
        "RESTYLE_STYLE_EXPORTER": "torchscript",
    }
    srv = start_server(web_models, env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            accept_downloads=True,
            viewport={"width": 1200, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh tab on the page; fails the test on any uncaught script error or request to another site."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    elsewhere: list[str] = []  # no CDN, no fonts, nothing but this server (and the page's own blob: URLs)
    tab.on("request", lambda r: r.url.startswith((server.url + "/", "blob:", "data:")) or elsewhere.append(r.url))
    tab.goto(server.url + "/")
    tab.wait_for_function("document.querySelectorAll('#styles .style').length > 0")
    yield tab
    tab.evaluate("localStorage.clear()")  # no job or training picked up by the next test's page
    tab.close()
    assert not errors, errors
    assert not elsewhere, elsewhere


# -- helpers -------------------------------------------------------------------------------------------------
def assert_no_broken_images(page: Any) -> None:
    try:
        page.wait_for_function(NO_BROKEN_IMAGES, timeout=5_000)
    except Exception:
        raise AssertionError(f"broken or unloaded images shown: {page.evaluate(BROKEN_IMAGES)}") from None


def wait_thumbnails(page: Any) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('#styles .style img')].every(i => !i.hidden && i.naturalWidth > 0)",
        timeout=30_000,
    )


def drop_file(page: Any, path: Path, mime: str, selector: str = "header") -> None:
    """A synthetic drag of ``path`` over ``selector`` (dragenter, dragover), checks the highlight, then drops it."""
    from playwright.sync_api import expect

    data = base64.b64encode(path.read_bytes()).decode()
    page.evaluate(
        """([b64, name, mime, selector]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            window.__drop = { dt, target: document.querySelector(selector) };
            for (const type of ["dragenter", "dragover"]) {
                window.__drop.target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
            }
        }""",
        [data, path.name, mime, selector],
    )
    expect(page.locator("body")).to_have_class(re.compile(r"\bdrag-over\b"))
    expect(page.locator("#drop-overlay")).to_be_visible()
    page.evaluate(
        """() => window.__drop.target.dispatchEvent(
            new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: window.__drop.dt }))"""
    )
    expect(page.locator("#drop-overlay")).to_be_hidden()


def fake_training_preview(phase: int) -> bytes:
    """A PNG standing in for a training preview: the sample photo under noise that fades as training goes on."""
    import numpy as np

    with Image.open(SAMPLE) as img:
        photo = np.asarray(img.convert("RGB").resize((192, 128)), dtype=np.float32)
    noise = np.random.default_rng(phase).uniform(0, 255, photo.shape).astype(np.float32)
    tint = np.array([90, 40, 160], dtype=np.float32)  # the "style's" palette, taking over as it trains
    amount = {1: 0.7, 2: 0.35, 3: 0.2}[phase]
    mixed = photo * (1 - amount) + noise * amount * 0.5 + tint * amount * 0.5
    out = io.BytesIO()
    Image.fromarray(mixed.clip(0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


# -- photo ---------------------------------------------------------------------------------------------------
def test_photo_tab_chooser_before_after_and_download(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # Before any photo: hints, no broken images, every action disabled (and looking it).
    wait_thumbnails(page)
    assert_no_broken_images(page)
    expect(page.locator("#styles .style")).to_have_count(4)  # ink and fire (inside duo), mosaic, the long one
    expect(page.locator('#styles .style[data-style="ink"]')).to_have_attribute("aria-checked", "true")
    expect(page.locator("#photo-hint")).to_be_visible()
    for img in ("#original", "#result"):
        expect(page.locator(img)).to_be_hidden()
    for button in ("#go", "#download", "#view-slider", "#view-side"):
        expect(page.locator(button)).to_be_disabled()
    grey = page.evaluate("getComputedStyle(document.getElementById('download')).backgroundColor")
    assert grey == "rgb(230, 230, 234)", grey  # looks disabled, not like a live link

    # The long style name is shown in full (it wraps), with its preview thumbnail and a tooltip.
    tile = page.locator(f'#styles .style[data-style="{LONG_NAME}"]')
    expect(tile.locator(".name")).to_have_text(LONG_NAME)
    expect(tile).to_have_attribute("title", re.compile(re.escape(LONG_NAME)))
    fits = tile.evaluate(
        """(el) => {
            const name = el.querySelector('.name'), box = el.getBoundingClientRect(), r = name.getBoundingClientRect();
            return name.scrollWidth <= name.clientWidth && name.scrollHeight <= name.clientHeight
                && r.left >= box.left && r.right <= box.right && r.bottom <= box.bottom + 0.5;
        }"""
    )
    assert fits, "the long style name is clipped"
    assert tile.locator("img").evaluate("i => i.naturalWidth") > 0

    # Choose the photo through the file chooser: it is stylized with the selected style at once.
    with page.expect_file_chooser() as chooser:
        page.locator("#photo-choose").click()
    chooser.value.set_files(str(SAMPLE))
    expect(page.locator("#original")).to_be_visible()
    expect(page.locator("#result")).to_be_visible(timeout=60_000)
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#result-caption")).to_contain_text("ink")
    assert page.evaluate("document.getElementById('result').naturalWidth") == MAX_SIZE

    # Another style and strength: stylized again; the slider comparison shows both images over each other.
    page.locator('#styles .style[data-style="mosaic"]').click()
    expect(page.locator("#result-caption")).to_contain_text("mosaic", timeout=60_000)
    page.locator("#strength").fill("0.6")
    expect(page.locator("#strength-value")).to_have_text("0.60")
    expect(page.locator("#go")).to_be_enabled(timeout=60_000)
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "slider")
    before, after = page.locator("#original").bounding_box(), page.locator("#result").bounding_box()
    assert before == after, (before, after)  # exactly over each other
    page.locator("#compare").fill("30")
    clip = page.evaluate("getComputedStyle(document.querySelector('.pane.before')).clipPath")
    assert "70%" in clip, clip
    page.locator("#compare").fill("50")
    assert_no_broken_images(page)

    # Download: enabled now, and it saves the real JPEG.
    expect(page.locator("#download")).to_be_enabled()
    with page.expect_download() as download_info:
        page.locator("#download").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.name.startswith("restyled-mosaic"), saved.name
    with Image.open(saved) as img:
        assert img.format == "JPEG" and max(img.size) == MAX_SIZE, (img.format, img.size)

    # Side by side: next to each other on a wide window, stacked (and still full width) on a phone.
    page.locator("#view-side").click()
    expect(page.locator("#viewer")).to_have_attribute("data-mode", "side")
    before, after = page.locator("#original").bounding_box(), page.locator("#result").bounding_box()
    assert before["x"] + before["width"] <= after["x"] and abs(before["y"] - after["y"]) < 1, (before, after)
    page.set_viewport_size({"width": 400, "height": 800})
    before, after = page.locator("#original").bounding_box(), page.locator("#result").bounding_box()
    assert after["y"] >= before["y"] + before["height"] and before["width"] > 300, (before, after)


def test_photo_dropped_anywhere_on_the_page(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator("#tab-video").click()  # "anywhere": even from another tab, onto the header
    drop_file(page, SAMPLE, "image/jpeg", "header")
    expect(page.locator("#tab-photo")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-photo")).to_be_visible()
    expect(page.locator("#photo-name")).to_have_text("sample.jpg")
    expect(page.locator("#original")).to_be_visible()
    expect(page.locator("#result")).to_be_visible(timeout=60_000)
    page.wait_for_function("document.getElementById('result').naturalWidth > 0")
    expect(page.locator("#download")).to_be_enabled()
    assert_no_broken_images(page)


def test_tabs_and_styles_work_from_the_keyboard(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator("#tab-photo").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-video")).to_be_focused()
    expect(page.locator("#tab-video")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-video")).to_be_visible()
    expect(page.locator("#panel-photo")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#tab-new-style")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")  # wraps around
    expect(page.locator("#tab-photo")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-video")).to_have_attribute("tabindex", "-1")  # one tab stop for the tab list

    # The style radio group: arrows move the choice; the chosen tile is the group's tab stop.
    page.locator('#styles .style[aria-checked="true"]').focus()
    page.keyboard.press("ArrowRight")
    checked = page.locator('#styles .style[aria-checked="true"]')
    expect(checked).to_have_count(1)
    expect(checked).to_be_focused()
    expect(checked).not_to_have_attribute("data-style", "ink")
    expect(checked).to_have_attribute("tabindex", "0")
    # Both tabs share the choice.
    name = checked.get_attribute("data-style")
    expect(page.locator(f'#video-styles .style[data-style="{name}"]')).to_have_attribute("aria-checked", "true")


# -- video ---------------------------------------------------------------------------------------------------
def test_video_tab_submit_cancel_play_and_download(page: Any, tmp_path: Path) -> None:
    import av
    from playwright.sync_api import expect

    from tests.video.clips import moving_scene, write_clip

    short = write_clip(tmp_path / "short.mp4", moving_scene(24, 96, 64), fps=12, audio=False)
    long = write_clip(tmp_path / "long.mp4", moving_scene(240, 96, 64), fps=12, audio=False)
    not_video = tmp_path / "holiday.mp4"
    not_video.write_bytes(b"these are not the frames you are looking for\n" * 200)  # text under a video's name

    page.locator("#tab-video").click()
    expect(page.locator("#video-hint")).to_be_visible()
    expect(page.locator("#video-result")).to_be_hidden()
    for button in ("#video-go", "#video-cancel", "#video-download"):
        expect(page.locator(button)).to_be_disabled()
    page.wait_for_function(
        "[...document.querySelectorAll('#video-styles .style img')].every(i => !i.hidden && i.naturalWidth > 0)",
        timeout=30_000,
    )
    assert_no_broken_images(page)

    # A 4xx answer is shown as the server's one-line message.
    page.set_input_files("#video-file", str(not_video))
    page.locator("#video-go").click()
    expect(page.locator("#video-status")).to_have_class(re.compile(r"\berror\b"), timeout=30_000)
    expect(page.locator("#video-status")).to_contain_text("(415)")
    expect(page.locator("#video-go")).to_be_enabled()

    # Cancel: a long clip, cancelled as soon as it is accepted.
    page.locator('#video-styles .style[data-style="mosaic"]').click()
    page.set_input_files("#video-file", str(long))
    expect(page.locator("#video-name")).to_contain_text("long.mp4")
    page.locator("#video-go").click()
    expect(page.locator("#video-cancel")).to_be_enabled(timeout=30_000)
    expect(page.locator("#video-go")).to_be_disabled()
    page.locator("#video-cancel").click()
    expect(page.locator("#video-status")).to_have_text("Cancelled.", timeout=30_000)
    expect(page.locator("#video-cancel")).to_be_disabled()
    expect(page.locator("#video-download")).to_be_disabled()

    # The short clip, to the end: progress, then a playable result and its download.
    page.set_input_files("#video-file", str(short))
    page.locator("#video-go").click()
    expect(page.locator("#video-progress")).to_be_visible()
    expect(page.locator("#video-result")).to_be_visible(timeout=120_000)
    expect(page.locator("#video-status")).to_contain_text("Done")
    assert page.evaluate("document.getElementById('video-progress').value") == 1
    page.wait_for_function("document.getElementById('video-result').readyState >= 2", timeout=30_000)
    width, duration = page.evaluate(
        "[document.getElementById('video-result').videoWidth, document.getElementById('video-result').duration]"
    )
    assert width == VIDEO_SIZE and 1.5 < duration < 2.5, (width, duration)
    page.evaluate("document.getElementById('video-result').play()")
    page.wait_for_function("document.getElementById('video-result').currentTime > 0.2", timeout=30_000)
    page.evaluate("document.getElementById('video-result').pause()")
    expect(page.locator("#video-cancel")).to_be_disabled()

    expect(page.locator("#video-download")).to_be_enabled()
    with page.expect_download() as download_info:
        page.locator("#video-download").click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".mp4" and saved.read_bytes()[4:8] == b"ftyp"
    with av.open(str(saved)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 24, frames


# -- new style (the /v1/styles training API faked in its agreed contract) ---------------------------------
class FakeStyleTrainingAPI:
    """``POST /v1/styles``, ``GET /v1/styles/NAME`` and ``.../training-preview`` exactly as the contract says.

    ``phase`` (set by the test) decides what the status and preview answer: 0 queued, no preview (404);
    1 and 2 running, each with its own preview image; 3 ready. Errors use the API's own error body
    (``restyle/api/errors.py``). Everything else the page asks (the style list, thumbnails, /v1/stylize) goes
    to the real server.
    """

    STEPS = 120

    def __init__(self, name: str, taken: str):
        self.name, self.taken = name, taken
        self.phase = 0
        self.posts: list[bytes] = []
        self.on_ready: Callable[[], None] = lambda: None

    @staticmethod
    def error(route: Any, status: int, error: str, message: str) -> None:
        body = {"error": error, "message": message, "status": status, "request_id": "fake"}
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def create(self, route: Any) -> None:
        request = route.request
        if request.method != "POST":
            route.fallback()  # GET /v1/styles: the real list
            return
        body = request.post_data_buffer or b""
        self.posts.append(body)
        if f'name="name"\r\n\r\n{self.taken}\r\n'.encode() in body:
            self.error(route, 409, "style_exists", f"a style named '{self.taken}' exists already; choose another name")
            return
        job = {"id": "job-fake-1", "kind": "style", "state": "queued", "progress": 0.0}
        route.fulfill(
            status=202,
            content_type="application/json",
            body=json.dumps(
                {
                    "name": self.name,
                    "job": job,
                    "status_url": f"/v1/styles/{self.name}",
                    "preview_url": f"/v1/styles/{self.name}/training-preview",
                }
            ),
        )

    def status(self, route: Any) -> None:
        step = {0: 0, 1: 40, 2: 80, 3: self.STEPS}[self.phase]
        if self.phase == 3:
            self.on_ready()
        body = {
            "name": self.name,
            "kind": "user",
            "state": {0: "queued", 3: "ready"}.get(self.phase, "running"),
            "progress": step / self.STEPS,
            "step": step,
            "steps": self.STEPS,
            "error": None,
            "job_id": "job-fake-1",
            "preview_url": f"/v1/styles/{self.name}/training-preview",
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def preview(self, route: Any) -> None:
        if self.phase == 0:
            self.error(route, 404, "not_found", "no training preview yet")
            return
        route.fulfill(status=200, content_type="image/png", body=fake_training_preview(self.phase))

    def install(self, page: Any) -> None:
        name = re.escape(self.name)
        page.route(re.compile(r"/v1/styles(\?.*)?$"), self.create)
        page.route(re.compile(rf"/v1/styles/{name}(\?.*)?$"), self.status)
        page.route(re.compile(rf"/v1/styles/{name}/training-preview(\?.*)?$"), self.preview)


def test_new_style_tab_against_faked_training_api(
    page: Any, server: Server, web_models: Path, style_image: Path
) -> None:
    from playwright.sync_api import expect

    name = "web_test_painting"
    fake = FakeStyleTrainingAPI(name, taken="taken")
    # When the fake says "ready", the style really exists: the real list, thumbnail and /v1/stylize serve it.
    fake.on_ready = lambda: shutil.copy(web_models / "mosaic.onnx", web_models / f"{name}.onnx")
    fake.install(page)
    try:
        page.locator("#tab-new-style").click()
        expect(page.locator("#new-style-go")).to_be_disabled()
        expect(page.locator("#new-style-cancel")).to_be_disabled()
        expect(page.locator("#training-preview")).to_be_hidden()
        expect(page.locator("#new-style-thumb")).to_be_hidden()
        assert_no_broken_images(page)

        # The chosen style image is shown as a thumbnail; an invalid name is refused before any request.
        page.set_input_files("#new-style-image", str(style_image))
        expect(page.locator("#new-style-thumb")).to_be_visible()
        assert page.locator("#new-style-thumb").evaluate("i => i.naturalWidth") == 96
        expect(page.locator("#new-style-name")).to_have_value("stripes")  # guessed from the file name
        page.locator("#new-style-name").fill("Bad Name!")
        expect(page.locator("#new-style-go")).to_be_disabled()
        expect(page.locator("#new-style-name-help")).to_have_class(re.compile(r"\berror\b"))

        # A taken name: the server's message in one line.
        page.locator("#new-style-name").fill("taken")
        page.locator("#new-style-go").click()
        status = page.locator("#new-style-status")
        expect(status).to_have_text(
            "Not accepted: a style named 'taken' exists already; choose another name (409)", timeout=10_000
        )
        expect(status).to_have_class(re.compile(r"\berror\b"))
        expect(page.locator("#new-style-go")).to_be_enabled()

        # Submitted with steps: queued (no preview yet, the hint stays), then running with previews.
        page.locator("#new-style-name").fill(name)
        page.locator("#new-style-steps").fill("120")
        page.locator("#new-style-go").click()
        expect(status).to_contain_text("queued")
        expect(page.locator("#new-style-progress")).to_be_visible()
        expect(page.locator("#new-style-go")).to_be_disabled()
        expect(page.locator("#new-style-cancel")).to_be_enabled()
        sent = fake.posts[-1]
        for field in (
            b'name="name"\r\n\r\n' + name.encode(),
            b'name="steps"\r\n\r\n120',
            b'name="image"; filename="stripes.png"',
        ):
            assert field in sent, field
        expect(page.locator("#training-hint")).to_be_visible()
        assert_no_broken_images(page)

        fake.phase = 1
        expect(page.locator("#training-caption")).to_contain_text("after step 40", timeout=10_000)
        expect(status).to_contain_text("step 40 / 120")
        first = page.locator("#training-preview").evaluate(PIXELS)
        fake.phase = 2
        expect(page.locator("#training-caption")).to_contain_text("after step 80", timeout=10_000)
        assert page.locator("#training-preview").evaluate(PIXELS) != first  # the preview image was replaced
        assert abs(page.evaluate("document.getElementById('new-style-progress').value") - 80 / 120) < 1e-3
        assert_no_broken_images(page)

        # Ready: the list is reloaded and the new style is selected on the Photo tab at once, and works.
        fake.phase = 3
        expect(status).to_contain_text("is ready", timeout=15_000)
        expect(page.locator(f'#styles .style[data-style="{name}"]')).to_have_attribute("aria-checked", "true")
        expect(page.locator("#new-style-cancel")).to_be_disabled()
        page.locator("#new-style-use").click()
        expect(page.locator("#panel-photo")).to_be_visible()
        page.set_input_files("#photo", str(SAMPLE))
        expect(page.locator("#result-caption")).to_contain_text(name, timeout=60_000)
        page.wait_for_function("document.getElementById('result').naturalWidth > 0")
        assert_no_broken_images(page)
    finally:
        (web_models / f"{name}.onnx").unlink(missing_ok=True)


def test_new_style_tab_trains_a_real_style_and_uses_it(
    page: Any, server: Server, web_models: Path, style_image: Path
) -> None:
    """The whole flow against the real API: upload, a real training job on the worker, the style in use."""
    import httpx
    from playwright.sync_api import expect

    name = "web_real_painting"
    try:
        page.locator("#tab-new-style").click()
        page.set_input_files("#new-style-image", str(style_image))
        page.locator("#new-style-name").fill(name)
        page.locator("#new-style-go").click()
        status = page.locator("#new-style-status")
        expect(status).to_contain_text("is ready", timeout=180_000)
        expect(status).not_to_have_class(re.compile(r"\berror\b"))
        # The server agrees: a ready user style, installed as a model file in the models folder.
        body = httpx.get(f"{server.url}/v1/styles/{name}").json()
        assert body["state"] == "ready" and body["kind"] == "user", body
        assert (web_models / f"{name}.onnx").is_file()
        expect(page.locator(f'#styles .style[data-style="{name}"]')).to_have_attribute("aria-checked", "true")
        page.locator("#new-style-use").click()
        page.set_input_files("#photo", str(SAMPLE))
        expect(page.locator("#result-caption")).to_contain_text(name, timeout=60_000)
        page.wait_for_function("document.getElementById('result').naturalWidth > 0")
        assert_no_broken_images(page)
    finally:
        httpx.delete(f"{server.url}/v1/styles/{name}")
        (web_models / f"{name}.onnx").unlink(missing_ok=True)
