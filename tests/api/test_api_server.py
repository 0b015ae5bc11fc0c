"""A real ``restyle serve`` (uvicorn) process on a free port: concurrency, a full queue, metrics."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[Server]:
    # One slot and two waiting places; larger outputs so that each request takes a noticeable time.
    env = {
        "RESTYLE_POOL_SIZE": "1",
        "RESTYLE_QUEUE_SIZE": "2",
        "RESTYLE_MAX_SIZE": "384",
        "RESTYLE_MAX_UPLOAD_BYTES": "300000",
    }
    srv = start_server(models_dir, env)
    yield srv
    stop_server(srv)


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_metric(url: str, name: str, value: float, **labels: str) -> str:
    """Read ``/metrics`` until ``name`` shows ``value``; returns that text. The timeout is a safety net only."""
    give_up = time.monotonic() + 60
    while (text := httpx.get(url + "/metrics", timeout=30).text) and _metric(text, name, **labels) != value:
        assert time.monotonic() < give_up, f"{name}{labels} never reached {value}: {_metric(text, name, **labels)}"
        time.sleep(0.02)
    return text


async def _burst(url: str, data: bytes, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(
            *(client.post("/v1/stylize", content=data, headers={"content-type": "image/jpeg"}) for _ in range(n))
        )


def test_concurrent_requests_within_capacity_all_succeed(server: Server, sample_bytes: bytes) -> None:
    responses = asyncio.run(_burst(server.url, sample_bytes, 3))  # 1 running + 2 waiting
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len({r.headers["x-request-id"] for r in responses}) == 3


def test_full_queue_gives_429_and_metrics_count_them(server: Server, sample_bytes: bytes) -> None:
    before = httpx.get(server.url + "/metrics").text
    # Uploads that stop half-way hold every place (1 running + 2 waiting) for as long as the test keeps them open,
    # so the burst below meets a full server however fast or slow this machine runs the model.
    stalled = [_stalled_upload(server.url) for _ in range(3)]
    try:
        _wait_metric(server.url, "restyle_queue_depth", 3)
        refused = asyncio.run(_burst(server.url, sample_bytes, 5))
    finally:
        for sock in stalled:
            sock.close()
    assert [r.status_code for r in refused] == [429] * 5, [r.text for r in refused]
    for r in refused:
        assert int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "overloaded"
    _wait_metric(server.url, "restyle_queue_depth", 0)  # the hung-up uploads gave their places back
    served = asyncio.run(_burst(server.url, sample_bytes, 3))
    assert [r.status_code for r in served] == [200] * 3
    after = httpx.get(server.url + "/metrics").text

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("restyle_rejections_total", reason="queue_full") == 5
    assert delta("restyle_http_requests_total", route="/v1/stylize", status="429") == 5
    assert delta("restyle_http_requests_total", route="/v1/stylize", status="200") == 3
    assert delta("restyle_inference_seconds_count", model="duo") == 3
    assert _metric(after, "restyle_queue_depth") == 0


def test_streamed_body_over_limit_is_cut_off(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):  # 3.2 MB against a 300 kB limit, without Content-Length
            yield b"\xff" * 16384

    response = httpx.post(
        server.url + "/v1/stylize", content=chunks(), headers={"content-type": "image/jpeg"}, timeout=30
    )
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"


def test_access_log_has_one_json_line_per_request(server: Server) -> None:
    rid = "server-log-check-1"
    httpx.get(server.url + "/healthz", headers={"X-Request-ID": rid})
    assert httpx.get(server.url + "/healthz", headers={"X-Request-ID": "server-log-check-2"}).status_code == 200
    # The server writes each request's line before it answers the next one: wait for the second request's line
    # (a safety-net timeout only), then the first one's must be there, once.
    give_up = time.monotonic() + 60
    while not any("server-log-check-2" in line for line in list(server.log)):
        assert time.monotonic() < give_up, "no access log line for the second request"
        time.sleep(0.02)
    lines = [line for line in list(server.log) if f'"request_id":"{rid}"' in line]
    assert len(lines) == 1 and '"status":200' in lines[0]


def _stalled_upload(url: str, declared: int = 200_000, sent: bytes = b"\xff\xd8\xff" + b"\x00" * 100) -> socket.socket:
    """A client that sends the headers and ``sent`` (a few body bytes) of a large upload, then stops sending."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST /v1/stylize HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def test_places_are_reserved_before_bodies_are_read_and_slow_bodies_time_out(
    models_dir: Path, sample_bytes: bytes
) -> None:
    env = {"RESTYLE_POOL_SIZE": "1", "RESTYLE_QUEUE_SIZE": "1", "RESTYLE_BODY_TIMEOUT": "2"}
    srv = start_server(models_dir, env)
    try:
        stalled = [_stalled_upload(srv.url) for _ in range(2)]  # take the one running and the one waiting place
        _wait_metric(srv.url, "restyle_queue_depth", 2)  # both places are reserved, neither body has arrived
        # A third upload sends its headers and not one byte of its body: a 429 can only come without reading it
        # (had the server waited for the body, this client would get the body timeout's 408 instead).
        third = _stalled_upload(srv.url, sent=b"")
        third.settimeout(60)
        assert third.recv(200).startswith(b"HTTP/1.1 429")
        third.close()
        for sock in stalled:  # the stalled uploads are cut off after body_timeout with 408...
            sock.settimeout(60)
            assert sock.recv(200).startswith(b"HTTP/1.1 408")
            sock.close()
        ok = httpx.post(srv.url + "/v1/stylize", content=sample_bytes, headers={"content-type": "image/jpeg"})
        assert ok.status_code == 200  # ...and their places are free again
        assert httpx.get(srv.url + "/healthz").status_code == 200
    finally:
        stop_server(srv)
