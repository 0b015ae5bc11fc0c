"""Fault injection against a real ``restyle serve`` on loopback: a full disk, low free space, clients that hang
up mid-upload, malformed requests and more concurrent requests than allowed.

Each answer must be the API's JSON error (never uvicorn's plain text, never a 500), nothing may be left
half-written (no job folder, no ``reserved`` record, no spooled temporary file), and the server must keep
serving. Tests wait for conditions with generous overall deadlines; none asserts a tight wall-clock bound.
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from restyle.jobs.store import RESERVED, JobStore, make_huey
from restyle.settings import Settings
from tests.conftest import SAMPLE_PHOTO
from tests.faults.servers import (
    Server,
    abort_upload,
    access_lines,
    file_size_limit,
    raw_request,
    start,
    stop_server,
    wait_for,
)

JPEG = {"content-type": "image/jpeg"}
ERROR_KEYS = {"error", "message", "status", "request_id"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tests.video.clips import moving_scene, write_clip

    return write_clip(
        tmp_path_factory.mktemp("clip") / "c.mp4", moving_scene(4, 64, 48), fps=12, audio=False
    ).read_bytes()


def _json_error(response: httpx.Response, status: int, kind: str, root: Path) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= ERROR_KEYS and body["error"] == kind and body["status"] == status, body
    assert "Traceback" not in response.text and str(root) not in response.text and "/tmp" not in response.text
    return body


def _store(root: Path) -> JobStore:
    settings = Settings(storage_root=root / "storage", bundled=False, warmup=False)  # type: ignore[arg-type]
    return JobStore(make_huey(settings), settings)


def _leftovers(root: Path) -> list[str]:
    """What a refused upload must not leave behind: job folders, ``reserved`` records, spooled files."""
    jobs = root / "storage" / "jobs"
    found = [f"folder {p.name}" for p in jobs.iterdir()] if jobs.is_dir() else []
    found += [f"reservation {j.id}" for j in _store(root).all() if j.state == RESERVED]
    # (hidden files there are other tools' session marks, not spooled uploads, which Python names tmpXXXX)
    found += [f"temporary {p.name}" for p in (root / "tmp").rglob("*") if p.is_file() and not p.name.startswith(".")]
    return found


def _wait_until_clean(root: Path) -> None:
    try:
        wait_for(lambda: not _leftovers(root), "nothing to be left behind")
    except AssertionError:
        assert _leftovers(root) == []  # says what is left
        raise


def _no_errors_logged(server: Server, expected: frozenset[int] = frozenset()) -> None:
    """No traceback in the server's log, and no 5xx in its access log but the ``expected`` ones (never a 500)."""
    text = "".join(server.log)
    assert "Traceback" not in text and "ClientDisconnect" not in text, text[-4000:]
    assert [line for line in access_lines(server) if line["status"] >= 500 and line["status"] not in expected] == []


def _photo(size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.open(SAMPLE_PHOTO).convert("RGB").resize(size).save(buffer, "JPEG")
    return buffer.getvalue()


# -- a full disk -----------------------------------------------------------------------------------------------
def test_a_full_disk_is_a_507_in_json_on_every_upload_route_and_leaves_nothing_half_written(
    job_models: Path, tmp_path: Path, clip: bytes
) -> None:
    """The server process may write no file past 2 MB (``RLIMIT_FSIZE``): for it, the disk is full. Uploads of
    3 MB, raw (written by the upload reader) or multipart (spooled by Starlette first), are 507."""
    env = {"RESTYLE_WARMUP": "false", "RESTYLE_STYLE_BASE": "duo"}
    server = start(job_models, tmp_path, env, preexec_fn=file_size_limit(2_000_000))
    big = os.urandom(3_000_000)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            attempts = {
                "video, raw": client.post(
                    "/v1/jobs/video?style=mosaic", content=big, headers={"content-type": "video/mp4"}
                ),
                "video, multipart": client.post(
                    "/v1/jobs/video", files={"video": ("v.mp4", big, "video/mp4")}, data={"style": "mosaic"}
                ),
                "style, raw": client.post(
                    "/v1/styles?name=full-raw", content=big, headers={"content-type": "image/png"}
                ),
                "style, multipart": client.post(
                    "/v1/styles", files={"image": ("s.png", big, "image/png")}, data={"name": "full-form"}
                ),
                "photo, multipart": client.post("/v1/stylize", files={"image": ("p.jpg", big, "image/jpeg")}),
            }
            for what, response in attempts.items():
                body = _json_error(response, 507, "storage_full", tmp_path)
                assert "full" in body["message"], (what, body)
            _wait_until_clean(tmp_path)
            # Free space itself is plentiful (the limit is per file of this process): ready, and what fits works.
            assert client.get("/readyz").status_code == 200
            assert client.post("/v1/stylize?style=mosaic", content=_photo(), headers=JPEG).status_code == 200
            accepted = client.post("/v1/jobs/video?style=mosaic", content=clip, headers={"content-type": "video/mp4"})
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["id"]
            assert sorted(p.name for p in (tmp_path / "storage" / "jobs").iterdir()) == [job_id]
        _no_errors_logged(server, frozenset({507}))
    finally:
        stop_server(server)


def test_low_free_space_makes_the_server_unready_and_job_uploads_507_before_a_byte_is_read(
    job_models: Path, tmp_path: Path
) -> None:
    """Free space under ``RESTYLE_MIN_FREE_BYTES`` (simulated: a threshold no disk meets): ``/readyz`` is 503
    and says why; a job upload is refused from its ``Content-Length``, answered without its body; photos,
    which need no disk, are still served."""
    env = {"RESTYLE_WARMUP": "false", "RESTYLE_STYLE_BASE": "duo", "RESTYLE_MIN_FREE_BYTES": str(10**18)}
    server = start(job_models, tmp_path, env, ready=False)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["content-type"].startswith("application/json")
            body = ready.json()
            assert body["ready"] is False and "storage is almost full" in body["error"], body
            assert str(tmp_path) not in ready.text
            for path, kind in (("/v1/jobs/video?style=mosaic", "video/mp4"), ("/v1/styles?name=low", "image/png")):
                request = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\nContent-Length: 50000000\r\n\r\n"
                status, headers, raw = raw_request(server, request.encode())  # the 50 MB are never sent
                assert status == 507 and headers["content-type"].startswith("application/json"), raw[:300]
                error = json.loads(raw)
                assert error["error"] == "storage_full" and "almost full" in error["message"], error
                assert str(tmp_path) not in raw.decode()
            assert client.post("/v1/stylize?style=mosaic", content=_photo(), headers=JPEG).status_code == 200
            _wait_until_clean(tmp_path)
            assert client.get("/readyz").status_code == 503  # still: nothing changed the free space
        _no_errors_logged(server, frozenset({503, 507}))
    finally:
        stop_server(server)


# -- clients that hang up, requests that cannot be parsed ---------------------------------------------------------
@pytest.fixture(scope="module")
def server(job_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("faulty-clients")
    running = start(job_models, root, {"RESTYLE_WARMUP": "false", "RESTYLE_STYLE_BASE": "duo"})
    try:
        yield running, root
    finally:
        stop_server(running)


def _multipart_start(field: str, filename: str, kind: str, fields: dict[str, str]) -> tuple[str, bytes]:
    """The content type and the first bytes of a multipart form whose file part never ends."""
    boundary = "restyle-fault-boundary"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {kind}\r\n\r\n"
    ).encode()
    return f"multipart/form-data; boundary={boundary}", head


def test_a_client_that_hangs_up_mid_upload_is_no_500_on_any_upload_route(server: tuple[Server, Path]) -> None:
    running, root = server
    payload = os.urandom(200_000)
    uploads: dict[str, tuple[str, str, bytes]] = {}
    for route, path, field, kind, fields in (
        ("photo", "/v1/stylize?style=mosaic", "image", "image/jpeg", {}),
        ("video", "/v1/jobs/video?style=mosaic", "video", "video/mp4", {"style": "mosaic"}),
        ("style", "/v1/styles?name=gone-raw", "image", "image/png", {"name": "gone-form"}),
    ):
        uploads[f"abort-{route}-raw"] = (path, kind, payload)
        content_type, head = _multipart_start(field, "upload.bin", kind, fields)
        uploads[f"abort-{route}-form"] = (path.split("?")[0], content_type, head + payload)
    for request_id, (path, content_type, first) in uploads.items():
        headers = {"Content-Type": content_type, "X-Request-ID": request_id}
        abort_upload(running, path, headers, first, declared=5_000_000)

    def logged() -> dict[str, int] | None:
        statuses = {line["request_id"]: line["status"] for line in access_lines(running)}
        return statuses if set(uploads) <= set(statuses) else None

    statuses = wait_for(logged, "every aborted upload to be logged")
    assert {rid: statuses[rid] for rid in uploads} == dict.fromkeys(uploads, 499), statuses
    _wait_until_clean(root)
    with httpx.Client(base_url=running.url, timeout=60) as client:  # and it keeps serving
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/stylize?style=mosaic", content=_photo(), headers=JPEG).status_code == 200
        metrics = client.get("/metrics").text
    assert 'status="500"' not in metrics
    assert f'restyle_rejections_total{{reason="disconnected"}} {float(len(uploads))}' in metrics, metrics
    _no_errors_logged(running)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/stylize HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/jobs/video HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n",
        b"GARBAGE\r\n\r\n",
    ],
    ids=["content-length-abc", "two-content-lengths", "no-request-line"],
)
def test_a_malformed_request_is_answered_in_json(server: tuple[Server, Path], request_bytes: bytes) -> None:
    running, _ = server
    status, headers, body = raw_request(running, request_bytes)
    assert status == 400 and headers["content-type"] == "application/json", (status, headers, body[:300])
    error = json.loads(body)
    assert set(error) >= ERROR_KEYS and error["error"] == "bad_request" and error["status"] == 400, error
    assert headers["x-request-id"] == error["request_id"]
    with httpx.Client(base_url=running.url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200


# -- more requests than RESTYLE_LIMIT_CONCURRENCY ---------------------------------------------------------------
def test_requests_beyond_the_concurrency_limit_get_a_json_503_and_healthz_still_answers(
    job_models: Path, tmp_path: Path
) -> None:
    env = {"RESTYLE_WARMUP": "false", "RESTYLE_LIMIT_CONCURRENCY": "2", "RESTYLE_BODY_TIMEOUT": "300"}
    running = start(job_models, tmp_path, env)
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    holders: list[socket.socket] = []
    try:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            for _ in range(2):  # two uploads that stall: both requests stay in progress
                sock = socket.create_connection((host, int(port)), timeout=30)
                sock.sendall(
                    b"POST /v1/stylize HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
                    + b"\xff" * 10
                )
                holders.append(sock)

            def refused() -> httpx.Response | None:
                r = client.get("/v1/styles")
                return r if r.status_code == 503 else None

            busy = wait_for(refused, "the third request to be refused")
            body = _json_error(busy, 503, "server_busy", tmp_path)
            assert busy.headers["retry-after"] == "1" and busy.headers["x-request-id"] == body["request_id"]
            assert client.get("/healthz").status_code == 200  # liveness never waits for a place
            for sock in holders:
                sock.close()
            holders.clear()
            assert wait_for(lambda: client.get("/v1/styles").status_code == 200, "the places to be free again")
            assert 'restyle_rejections_total{reason="concurrency"}' in client.get("/metrics").text
        _no_errors_logged(running, frozenset({503}))
    finally:
        for sock in holders:
            sock.close()
        stop_server(running)
