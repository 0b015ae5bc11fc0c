"""End to end: the web page at / in headless Chromium (Debian's package) driven by Playwright.

Skipped, with the reason, only when /usr/bin/chromium is absent; CI runs
``.ci/install-browser.sh`` first so it always runs there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import SAMPLE, Server, start_server, stop_server

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

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"Chromium not found at {CHROMIUM}: install it with .ci/install-browser.sh (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[Server]:
    srv = start_server(models_dir, {"RESTYLE_MAX_SIZE": "256", "RESTYLE_PREVIEW_SIZE": "96"})
    yield srv
    stop_server(srv)


def test_web_page_stylizes_and_downloads(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            accept_downloads=True,
            viewport={"width": 1200, "height": 760},
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/")

            # Thumbnails of every style, each with a loaded preview image.
            thumbs = page.locator(".style")
            expect(thumbs).to_have_count(3)  # ink and fire (inside duo) and mosaic
            page.wait_for_function(
                "[...document.querySelectorAll('.style img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            expect(page.locator('.style[data-style="ink"]')).to_have_attribute("aria-checked", "true")

            page.set_input_files("#photo", str(SAMPLE))
            expect(page.locator("#original")).to_be_visible()
            page.locator('.style[data-style="mosaic"]').click()
            page.locator("#strength").fill("0.6")
            expect(page.locator("#strength-value")).to_have_text("0.60")
            page.locator("#go").click()

            expect(page.locator("#result")).to_be_visible(timeout=60_000)
            page.wait_for_function("document.getElementById('result').naturalWidth > 0")
            expect(page.locator("#result-caption")).to_contain_text("mosaic")
            expect(page.locator("#status")).to_contain_text("Done")
            assert page.evaluate("document.getElementById('result').naturalWidth") == 256

            with page.expect_download() as download_info:
                page.locator("#download").click()
            download = download_info.value
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            assert saved.name.startswith("restyled-mosaic") and saved.read_bytes()[:3] == b"\xff\xd8\xff"

            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            if keep := os.environ.get("RESTYLE_TEST_SCREENSHOT"):
                shutil.copy(shot, keep)
            assert not errors, errors
        finally:
            browser.close()
