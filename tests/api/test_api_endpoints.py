"""Every endpoint and status code through FastAPI's TestClient, against real ONNX models."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from restyle.api.app import create_app
from restyle.api.deps import get_service

JPEG = {"content-type": "image/jpeg"}


def _decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _assert_error(response, status: int, error: str | None = None) -> dict:
    """The JSON error shape, with a request ID and nothing that looks like a trace or a path."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    if error:
        assert body["error"] == error
    text = response.text
    assert "Traceback" not in text and "/tmp/" not in text and ".py" not in text and "/work" not in text
    return body


# -- health, readiness, catalogue ------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True and sorted(ready.json()["models"]) == ["fire", "ink", "mosaic"]


def test_readyz_is_503_until_warmed_up(make_settings) -> None:
    client = TestClient(create_app(make_settings()))  # no context manager: lifespan (warm-up) never runs
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["ready"] is False
    assert client.get("/healthz").status_code == 200


def test_styles_listing_and_previews(client: TestClient) -> None:
    body = client.get("/v1/styles").json()
    names = [s["name"] for s in body["styles"]]
    # One entry per style a request can name: the two styles inside the duo model, and mosaic.
    assert names == ["fire", "ink", "mosaic"] and body["default"] == "ink"
    ink = body["styles"][1]
    assert ink["model"] == "duo" and ink["styles"] == ["ink", "fire"] and ink["arch"] == "fast"
    assert ink["default"] is True and ink["size_bytes"] > 0 and ink["source"] == "user"
    previews = {}
    for entry in body["styles"]:
        preview = client.get(entry["preview_url"])
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        assert max(_decoded(preview.content).size) == 64
        previews[entry["name"]] = preview.content
    assert previews["fire"] != previews["ink"]  # each style's own preview, not the model's first style
    _assert_error(client.get("/v1/styles/nope/preview"), 404, "unknown_style")


# -- stylize: success -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "pil"),
    [("jpeg", "image/jpeg", "JPEG"), ("png", "image/png", "PNG"), ("webp", "image/webp", "WEBP")],
)
def test_stylize_multipart_each_format(client: TestClient, sample_bytes: bytes, fmt: str, mime: str, pil: str) -> None:
    response = client.post(
        "/v1/stylize",
        files={"image": ("photo.jpg", sample_bytes, "image/jpeg")},
        data={"style": "duo:fire", "format": fmt, "quality": "80", "max_size": "96", "preserve_color": "true"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    assert response.headers["x-model"] == "duo:fire"
    assert float(response.headers["x-inference-time-ms"]) > 0
    assert "inference;dur=" in response.headers["server-timing"]
    img = _decoded(response.content)
    assert img.format == pil and max(img.size) == 96


def test_stylize_raw_body_with_query_parameters(client: TestClient, sample_bytes: bytes) -> None:
    response = client.post("/v1/stylize?style=mosaic&strength=0.5", content=sample_bytes, headers=JPEG)
    assert response.status_code == 200
    assert response.headers["x-model"] == "mosaic"
    assert max(_decoded(response.content).size) == 128  # the server's default max_size


def test_strength_zero_returns_the_photo(client: TestClient) -> None:
    photo = Image.new("RGB", (64, 48), (200, 40, 90))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    response = client.post(
        "/v1/stylize?strength=0&format=png", content=buf.getvalue(), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200
    assert _decoded(response.content).getpixel((10, 10)) == (200, 40, 90)


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "trace-42"}).headers["x-request-id"] == "trace-42"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"}).headers["x-request-id"]
    assert len(generated) == 32 and generated != "bad id\twith junk"
    assert client.get("/no/such/route").headers["x-request-id"]


# -- stylize: every kind of bad input ---------------------------------------------------------


def test_unknown_style_404(client: TestClient, sample_bytes: bytes) -> None:
    for style in ("nope", "../../etc/passwd", "duo:nope", "UPPER"):
        _assert_error(
            client.post("/v1/stylize", params={"style": style}, content=sample_bytes, headers=JPEG),
            404,
            "unknown_style",
        )


def test_damaged_model_file_is_a_400_naming_the_model(make_client, models_dir, tmp_path, sample_bytes: bytes) -> None:
    """A truncated or non-ONNX file among the models: its style answers 400 ``broken_model``; the others still work."""
    import shutil

    shutil.copy(models_dir / "mosaic.onnx", tmp_path / "mosaic.onnx")
    (tmp_path / "cut.onnx").write_bytes((models_dir / "duo.onnx").read_bytes()[:5000])
    (tmp_path / "junk.onnx").write_bytes(b"not a model at all")
    client = make_client(models=tmp_path)
    for style in ("cut", "junk"):
        body = _assert_error(
            client.post("/v1/stylize", params={"style": style}, content=sample_bytes, headers=JPEG), 400, "broken_model"
        )
        assert f"model '{style}' cannot be used" in body["message"] and "damaged" in body["message"]
    assert client.post("/v1/stylize", params={"style": "mosaic"}, content=sample_bytes, headers=JPEG).status_code == 200
    assert [s["name"] for s in client.get("/v1/styles").json()["styles"]] == ["mosaic"]
    assert client.get("/readyz").status_code == 200


def test_not_an_image_or_truncated_415(client: TestClient, sample_bytes: bytes) -> None:
    _assert_error(client.post("/v1/stylize", content=b"hello, not an image", headers=JPEG), 415, "bad_image")
    _assert_error(
        client.post("/v1/stylize", content=sample_bytes[: len(sample_bytes) // 3], headers=JPEG), 415, "bad_image"
    )
    _assert_error(
        client.post("/v1/stylize", files={"image": ("x.jpg", b"GIF89a-broken", "image/gif")}), 415, "bad_image"
    )
    _assert_error(
        client.post("/v1/stylize", content=b"{}", headers={"content-type": "application/json"}),
        415,
        "unsupported_media_type",
    )


@pytest.mark.parametrize(
    "params",
    [
        {"strength": "1.5"},
        {"strength": "abc"},
        {"format": "gif"},
        {"quality": "0"},
        {"max_size": "8"},
        {"max_size": "99999"},
        {"preserve_color": "maybe"},
    ],
)
def test_bad_parameters_422(client: TestClient, sample_bytes: bytes, params: dict[str, str]) -> None:
    body = _assert_error(
        client.post("/v1/stylize", params=params, content=sample_bytes, headers=JPEG), 422, "invalid_parameters"
    )
    assert body["details"] and list(params)[0] in body["message"]
    # The same parameters as multipart form fields.
    form = client.post("/v1/stylize", files={"image": ("p.jpg", sample_bytes, "image/jpeg")}, data=params)
    _assert_error(form, 422, "invalid_parameters")


def test_missing_image_422(client: TestClient) -> None:
    _assert_error(client.post("/v1/stylize", data={"style": "duo"}, files={"other": ("a", b"x")}), 422)
    _assert_error(client.post("/v1/stylize", content=b"", headers=JPEG), 422)


def test_body_over_limit_413_without_reading_it(make_client, sample_bytes: bytes) -> None:
    client = make_client(max_upload_bytes=10_000)
    assert len(sample_bytes) > 10_000
    _assert_error(client.post("/v1/stylize", content=sample_bytes, headers=JPEG), 413, "body_too_large")

    def chunks():  # no Content-Length (chunked): the limit trips while streaming
        for _ in range(100):
            yield b"\0" * 4096

    _assert_error(client.post("/v1/stylize", content=chunks(), headers=JPEG), 413, "body_too_large")
    form = client.post("/v1/stylize", files={"image": ("p.jpg", sample_bytes, "image/jpeg")})
    _assert_error(form, 413, "body_too_large")

    # The app itself, driven as ASGI: with a Content-Length over the limit it answers without pulling one chunk.
    pulled: list[int] = []
    statuses: list[int] = []

    async def receive() -> dict:
        pulled.append(1)
        return {"type": "http.request", "body": sample_bytes, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/stylize", "raw_path": b"/v1/stylize", "root_path": "", "query_string": b"",
        "client": ("127.0.0.1", 50000), "server": ("test", 80),
        "headers": [(b"host", b"test"), (b"content-type", b"image/jpeg"),
                    (b"content-length", str(len(sample_bytes)).encode())],
    }  # fmt: skip
    client.portal.call(client.app, scope, receive, send)
    assert statuses == [413] and pulled == []


def test_body_limit_stops_reading_at_the_limit() -> None:
    """Drive the middleware directly: it must stop pulling chunks as soon as the limit is passed."""
    import asyncio

    from restyle.api.errors import BodyTooLarge
    from restyle.api.middleware import BodyLimitMiddleware

    pulled = 0

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def app(scope, receive, send):
        while True:
            await receive()

    scope = {"type": "http", "headers": []}
    with pytest.raises(BodyTooLarge):
        asyncio.run(BodyLimitMiddleware(app, limit=10_000)(scope, receive, None))
    assert pulled == 11


def _png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (what a decompression bomb looks like to the decoder)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[8 + 8 : 8 + 8 + 13] = ihdr[4:]
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_too_many_pixels_413(make_client, sample_bytes: bytes) -> None:
    client = make_client()
    _assert_error(
        client.post("/v1/stylize", content=_png_header_bomb(60_000, 60_000), headers={"content-type": "image/png"}),
        413,
        "too_many_pixels",
    )
    small_limit = make_client(max_pixels=10_000)
    _assert_error(small_limit.post("/v1/stylize", content=sample_bytes, headers=JPEG), 413, "too_many_pixels")


def test_deadline_503(make_client, sample_bytes: bytes) -> None:
    client = make_client(request_timeout=1e-6)
    response = client.post("/v1/stylize", content=sample_bytes, headers=JPEG)
    _assert_error(response, 503, "deadline_exceeded")
    assert int(response.headers["retry-after"]) >= 1


def test_work_for_a_client_that_hung_up_is_dropped_while_queued(make_client, sample_bytes: bytes) -> None:
    """Two uploads wait behind a pool the test holds; their clients hang up; neither ever reaches the model.

    Driven as raw ASGI on the app's own event loop, so the test decides when each step happens: the pool is
    held by a job that waits on an event, the requests are known to be queued (they are inside
    ``Admission.run``), and the clients hang up only then.
    """
    client = make_client(pool_size=1, queue_size=4)
    app = client.app
    admission, service, metrics = app.state.admission, app.state.service, app.state.metrics
    stylized: list[object] = []
    stylize = service.stylize
    service.stylize = lambda *args, **kwargs: stylized.append(args) or stylize(*args, **kwargs)
    before = metrics.rejections.labels("disconnected")._value.get()

    async def scenario() -> tuple[list[int], bool]:
        gate, holding = threading.Event(), threading.Event()
        queued, hang_up = asyncio.Event(), asyncio.Event()
        in_run = 0
        admission_run = admission.run

        async def counted_run(fn, deadline, slot=None, disconnected=None):  # noqa: ANN001, ANN202
            nonlocal in_run
            if disconnected is not None:  # a photo request, now in the queue
                in_run += 1
                if in_run == 2:
                    queued.set()
            return await admission_run(fn, deadline, slot, disconnected)

        admission.run = counted_run

        def hold() -> None:
            holding.set()
            gate.wait(60)

        holder = asyncio.ensure_future(admission_run(hold, time.monotonic() + 3600))
        assert await asyncio.to_thread(holding.wait, 60)  # the only pool thread is taken

        async def upload(statuses: list[int]) -> None:
            sent = False

            async def receive() -> dict:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": sample_bytes, "more_body": False}
                if not hang_up.is_set():
                    await hang_up.wait()  # "still connected" (a disconnect check cancels this wait at once)
                return {"type": "http.disconnect"}

            async def send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                "scheme": "http", "path": "/v1/stylize", "raw_path": b"/v1/stylize", "root_path": "",
                "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("test", 80),
                "headers": [(b"host", b"test"), (b"content-type", b"image/jpeg"),
                            (b"content-length", str(len(sample_bytes)).encode())],
            }  # fmt: skip
            await app(scope, receive, send)

        statuses: list[int] = []
        uploads = [asyncio.ensure_future(upload(statuses)) for _ in range(2)]
        try:
            await asyncio.wait_for(queued.wait(), 60)  # both are queued behind the held pool
            hang_up.set()  # both clients go away
            await asyncio.wait_for(asyncio.gather(*uploads), 60)
            still_held = not holder.done()  # the drop happened while the pool was still busy
        finally:
            admission.run = admission_run
            gate.set()
            await asyncio.wait_for(holder, 60)
        return statuses, still_held

    statuses, still_held = client.portal.call(scenario)
    assert statuses == [499, 499] and still_held
    assert metrics.rejections.labels("disconnected")._value.get() - before == 2
    assert stylized == []  # neither upload ever reached the model
    assert (admission.admitted, admission.waiting) == (0, 0)
    assert client.post("/v1/stylize", content=sample_bytes, headers=JPEG).status_code == 200  # and it serves on


def test_unexpected_error_is_a_bare_500(make_settings, sample_bytes: bytes) -> None:
    class Broken:
        def resolve(self, style):
            raise RuntimeError("secret detail at /srv/restyle/models/x.onnx")

    app = create_app(make_settings(warmup=False))
    app.dependency_overrides[get_service] = lambda: Broken()
    with TestClient(app, raise_server_exceptions=False) as client:
        body = _assert_error(client.post("/v1/stylize", content=sample_bytes, headers=JPEG), 500, "internal_error")
    assert "secret" not in json.dumps(body)


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    _assert_error(client.get("/v2/whatever"), 404)
    _assert_error(client.get("/v1/stylize"), 405)


# -- security ---------------------------------------------------------------------------------


def test_api_keys(make_client, sample_bytes: bytes) -> None:
    client = make_client(api_keys="k1,second-key")
    assert client.get("/healthz").status_code == 200
    response = client.get("/v1/styles")
    _assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    _assert_error(client.get("/v1/styles", headers={"Authorization": "Bearer wrong"}), 401)
    _assert_error(client.get("/metrics"), 401)
    _assert_error(client.post("/v1/stylize", content=sample_bytes, headers=JPEG), 401)
    ok = {"Authorization": "Bearer second-key"}
    assert client.get("/v1/styles", headers=ok).status_code == 200
    assert client.post("/v1/stylize", content=sample_bytes, headers={**JPEG, **ok}).status_code == 200
    assert client.get("/metrics", headers=ok).status_code == 200


def test_cors_closed_by_default_and_configurable(make_client) -> None:
    origin = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    closed = make_client()
    assert "access-control-allow-origin" not in closed.get("/v1/styles", headers=origin).headers
    assert "access-control-allow-origin" not in closed.options("/v1/stylize", headers=origin).headers
    opened = make_client(cors_origins="https://app.example")
    preflight = opened.options("/v1/stylize", headers=origin)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    other = opened.options("/v1/stylize", headers={**origin, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_binds_loopback_by_default(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``restyle serve`` hands uvicorn: loopback unless a host is asked for."""
    import uvicorn

    from restyle.cli import main

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append(kw))
    monkeypatch.setenv("RESTYLE_BUNDLED", "false")
    monkeypatch.setenv("RESTYLE_WARMUP", "false")
    assert main(["serve", "--models", str(models_dir)]) == 0
    assert main(["serve", "--models", str(models_dir), "--host", "0.0.0.0"]) == 0
    assert [c["host"] for c in calls] == ["127.0.0.1", "0.0.0.0"]


# -- observability ----------------------------------------------------------------------------


def test_metrics_count_routes_statuses_and_rejections(client: TestClient, sample_bytes: bytes) -> None:
    client.post("/v1/stylize", content=sample_bytes, headers=JPEG)
    client.post("/v1/stylize", content=b"nope", headers=JPEG)
    client.get("/v1/styles/nope/preview")
    text = client.get("/metrics").text
    assert 'restyle_http_requests_total{method="POST",route="/v1/stylize",status="200"} 1.0' in text
    assert 'restyle_http_requests_total{method="POST",route="/v1/stylize",status="415"} 1.0' in text
    assert 'restyle_http_requests_total{method="GET",route="/v1/styles/{name}/preview",status="404"} 1.0' in text
    assert 'restyle_rejections_total{reason="bad_input"} 1.0' in text
    assert 'restyle_inference_seconds_count{model="duo"}' in text
    assert "restyle_http_request_duration_seconds_bucket" in text and "restyle_queue_depth 0.0" in text
    assert "restyle_ready 1.0" in text


def test_one_structured_access_log_line_per_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="restyle.access"):
        response = client.get("/v1/styles/nope/preview", headers={"X-Request-ID": "abc-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "restyle.access"]
    assert len(lines) == 1
    assert lines[0]["request_id"] == "abc-1" == response.headers["x-request-id"]
    assert lines[0]["status"] == 404 and lines[0]["route"] == "/v1/styles/{name}/preview"
    assert lines[0]["duration_ms"] >= 0


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    stylize = spec["paths"]["/v1/stylize"]["post"]
    content = stylize["requestBody"]["content"]
    assert "multipart/form-data" in content and "image/jpeg" in content
    assert {"style", "strength", "preserve_color", "max_size", "format", "quality"} <= {
        p["name"] for p in stylize["parameters"]
    }
    assert {"200", "404", "413", "415", "422", "429", "503"} <= set(stylize["responses"])
    assert "/v1/styles" in spec["paths"] and "/healthz" in spec["paths"]


def test_web_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="photo"' in page.text and 'id="strength"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
