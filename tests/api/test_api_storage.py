"""Storage faults and clients that hang up, at the app's level (issue 26): 507 in JSON, never a 500.

* free space under ``RESTYLE_MIN_FREE_BYTES`` (with the upload's ``Content-Length``): 507 before the body;
* a write refused for lack of space (ENOSPC, EDQUOT, EFBIG) while the upload is written: 507, no partial file;
* the SQLite broker full ("database or disk is full") when the job is queued: 507, not 503;
* a client that disconnects mid-upload: logged at info and counted as 499, no traceback, nothing left.

Real API apps on a real SQLite broker (``tests.video.jobs_rig``) with no job worker. The same faults against
a real server on loopback are in ``tests/faults/test_server_faults.py``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from restyle.api.app import create_app
from restyle.jobs.store import RESERVED, JobStore
from tests.video.clips import moving_scene, write_clip
from tests.video.jobs_rig import job_settings, make

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
VIDEO = {"content-type": "video/mp4"}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_clip(
        tmp_path_factory.mktemp("storage") / "c.mp4", moving_scene(4, 64, 48), fps=12, audio=False
    ).read_bytes()


def _error(response: Any, status: int, kind: str, root: Path) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == kind and body["status"] == status and body["message"], body
    assert "Traceback" not in response.text and str(root) not in response.text
    return body


def _leftovers(store: JobStore) -> list[str]:
    jobs = store.root / "jobs"
    found = [f"folder {p.name}" for p in jobs.iterdir()] if jobs.is_dir() else []
    return found + [f"record {j.id} ({j.state})" for j in store.all()]


def _wait_clean(store: JobStore, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _leftovers(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _leftovers(store) == []


def test_a_job_upload_that_would_leave_too_little_free_space_is_507(
    models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, min_free_bytes=10**18, style_base="duo")
    try:
        for response in (
            client.post("/v1/jobs/video?style=ink", content=video, headers=VIDEO),
            client.post(
                "/v1/styles", files={"image": ("s.jpg", SAMPLE.read_bytes(), "image/jpeg")}, data={"name": "nope"}
            ),
        ):
            body = _error(response, 507, "storage_full", tmp_path)
            assert "almost full" in body["message"] and "must stay free" in body["message"], body
        _wait_clean(rig.app.state.jobs.store)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "storage is almost full" in ready.json()["error"]
        # photos need no disk: still served
        photo = client.post(
            "/v1/stylize?style=ink", content=SAMPLE.read_bytes(), headers={"content-type": "image/jpeg"}
        )
        assert photo.status_code == 200
    finally:
        rig.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG], ids=["ENOSPC", "EDQUOT", "EFBIG"])
def test_a_disk_that_fills_while_the_upload_is_written_is_507_and_leaves_no_partial_file(
    models_dir: Path, video: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    import restyle.api.uploads as uploads

    write_all = uploads._write_all

    def fills_up(fh: Any, data: bytes) -> None:
        write_all(fh, data[: len(data) // 2])  # half of it fits, then the disk is full
        raise OSError(code, "no room")

    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, api_keys="k1", max_jobs_per_key=1, style_base="duo")
    key = {"authorization": "Bearer k1"}
    try:
        monkeypatch.setattr(uploads, "_write_all", fills_up)
        body = _error(
            client.post("/v1/jobs/video?style=ink", content=video, headers={**VIDEO, **key}),
            507,
            "storage_full",
            tmp_path,
        )
        assert "storage is full" in body["message"]
        files = {"image": ("s.jpg", SAMPLE.read_bytes(), "image/jpeg")}
        _error(
            client.post("/v1/styles", files=files, data={"name": "full"}, headers=key), 507, "storage_full", tmp_path
        )
        _wait_clean(rig.app.state.jobs.store)  # no partial input, no reservation holding the key's one place
        monkeypatch.setattr(uploads, "_write_all", write_all)  # space is back
        assert client.post("/v1/jobs/video?style=ink", content=video, headers={**VIDEO, **key}).status_code == 202
    finally:
        rig.close()


def test_a_full_broker_when_the_job_is_queued_is_507_not_503(
    models_dir: Path, video: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0)
    try:
        store = rig.app.state.jobs.store

        def full(*args: object, **kwargs: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store.queues, "put", full)  # the queue's table cannot grow (a message per job kind)
        body = _error(
            client.post("/v1/jobs/video?style=ink", content=video, headers=VIDEO), 507, "storage_full", tmp_path
        )
        assert "job queue cannot grow" in body["message"], body
        _wait_clean(store)
        monkeypatch.undo()
        assert client.post("/v1/jobs/video?style=ink", content=video, headers=VIDEO).status_code == 202
    finally:
        rig.close()


# -- a client that hangs up mid-upload: 499, at info, without a traceback -----------------------------------------
FORM_START = (
    b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\ngone\r\n'
    b'--b\r\nContent-Disposition: form-data; name="image"; filename="s.png"\r\nContent-Type: image/png\r\n\r\n'
)


async def _call(app: Any, path: str, query: str, content_type: str) -> list[dict]:
    """One request straight through the ASGI app: the start of a 5 MB body, then the client is gone."""
    start = FORM_START if content_type.startswith("multipart/") else b""
    messages = iter(
        [
            {"type": "http.request", "body": start + b"\xff" * 1000, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict] = []

    async def receive() -> dict:
        try:
            return next(messages)
        except StopIteration:
            await asyncio.Event().wait()  # never: a disconnected client sends nothing more
            raise AssertionError from None

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", content_type.encode()), (b"content-length", b"5000000")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("path", "query", "content_type"),
    [
        ("/v1/stylize", "style=ink", "image/jpeg"),
        ("/v1/jobs/video", "style=ink", "video/mp4"),
        ("/v1/styles", "name=gone", "image/png"),
        ("/v1/styles", "", "multipart/form-data; boundary=b"),
    ],
    ids=["photo", "video", "style", "style-multipart"],
)
def test_a_client_that_hangs_up_mid_upload_is_a_499_logged_at_info_without_a_traceback(
    models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str, query: str, content_type: str
) -> None:
    app = create_app(job_settings(models_dir, tmp_path / "jobs", style_base="duo"))
    try:
        with caplog.at_level(logging.INFO, logger="restyle"):
            sent = asyncio.run(_call(app, path, query, content_type))
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499, sent
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
        assert problems == [], [r.getMessage() for r in problems]
        assert any("closed the connection" in r.getMessage() for r in caplog.records)
        access = [r.getMessage() for r in caplog.records if r.name == "restyle.access"]
        assert len(access) == 1 and '"status":499' in access[0], access
        metrics = app.state.metrics.render().decode()
        assert 'restyle_rejections_total{reason="disconnected"} 1.0' in metrics
        assert 'status="500"' not in metrics and 'status="499"' in metrics
        if path != "/v1/stylize":
            store = app.state.jobs.store
            _wait_clean(store)
            assert [j for j in store.all() if j.state == RESERVED] == []
    finally:
        app.state.jobs.close()
        app.state.admission.close()


def test_the_worker_gauge_says_how_recent_a_heartbeat_must_be(client: Any) -> None:
    from restyle.jobs.store import WORKER_TTL

    text = client.get("/metrics").text
    assert (
        f"# HELP restyle_job_workers Worker processes whose service reported alive in the last {WORKER_TTL:g} s."
        in text
    )
