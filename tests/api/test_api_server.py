"""A real ``restyle serve`` (uvicorn) process on a free port: concurrency, a full queue, metrics."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
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
    responses = asyncio.run(_burst(server.url, sample_bytes, 12))
    codes = [r.status_code for r in responses]
    ok, refused = codes.count(200), codes.count(429)
    assert ok + refused == 12, codes
    assert ok >= 3 and refused >= 1, codes
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "overloaded"
    after = httpx.get(server.url + "/metrics").text

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("restyle_rejections_total", reason="queue_full") == refused
    assert delta("restyle_http_requests_total", route="/v1/stylize", status="429") == refused
    assert delta("restyle_http_requests_total", route="/v1/stylize", status="200") == ok
    assert delta("restyle_inference_seconds_count", model="duo") == ok
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
    for _ in range(50):
        if any(rid in line for line in server.log):
            break
        asyncio.run(asyncio.sleep(0.05))
    lines = [line for line in server.log if f'"request_id":"{rid}"' in line]
    assert len(lines) == 1 and '"status":200' in lines[0]


def _stalled_upload(url: str, declared: int = 200_000) -> socket.socket:
    """A client that sends the headers and a few body bytes of a large upload, then stops sending."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST /v1/stylize HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"\xff\xd8\xff" + b"\x00" * 100)
    return sock


def test_places_are_reserved_before_bodies_are_read_and_slow_bodies_time_out(
    models_dir: Path, sample_bytes: bytes
) -> None:
    env = {"RESTYLE_POOL_SIZE": "1", "RESTYLE_QUEUE_SIZE": "1", "RESTYLE_BODY_TIMEOUT": "2"}
    srv = start_server(models_dir, env)
    try:
        stalled = [_stalled_upload(srv.url) for _ in range(2)]  # take the one running and the one waiting place
        time.sleep(0.5)
        began = time.monotonic()
        full = httpx.post(srv.url + "/v1/stylize", content=sample_bytes, headers={"content-type": "image/jpeg"})
        assert full.status_code == 429 and time.monotonic() - began < 1.5  # refused at once, body never needed
        for sock in stalled:  # the stalled uploads are cut off after body_timeout with 408...
            sock.settimeout(10)
            assert sock.recv(200).startswith(b"HTTP/1.1 408")
            sock.close()
        ok = httpx.post(srv.url + "/v1/stylize", content=sample_bytes, headers={"content-type": "image/jpeg"})
        assert ok.status_code == 200  # ...and their places are free again
        assert httpx.get(srv.url + "/healthz").status_code == 200
    finally:
        stop_server(srv)


def test_work_for_a_client_that_hung_up_is_dropped_while_queued(models_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.jpg"  # about 2 s of inference on one thread: long enough to queue behind
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1500, 2400, 3), np.uint8)).save(big, quality=70)
    env = {"RESTYLE_POOL_SIZE": "1", "RESTYLE_QUEUE_SIZE": "4", "RESTYLE_THREADS": "1", "RESTYLE_MAX_SIZE": "2400"}
    srv = start_server(models_dir, env)
    try:
        before = httpx.get(srv.url + "/metrics").text
        slow = threading.Thread(
            target=lambda: httpx.post(
                srv.url + "/v1/stylize", content=big.read_bytes(), headers={"content-type": "image/jpeg"}, timeout=60
            )
        )
        slow.start()
        time.sleep(0.3)
        data = big.read_bytes()
        quitters = []
        for _ in range(2):  # two clients send a whole upload, then hang up while it is queued
            host, port = srv.url.removeprefix("http://").split(":")
            sock = socket.create_connection((host, int(port)))
            head = f"POST /v1/stylize HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            sock.sendall(head.encode() + data)
            quitters.append(sock)
        time.sleep(0.3)
        for sock in quitters:
            sock.close()
        slow.join()
        time.sleep(0.5)
        after = httpx.get(srv.url + "/metrics").text
        dropped = _metric(after, "restyle_rejections_total", reason="disconnected") - _metric(
            before, "restyle_rejections_total", reason="disconnected"
        )
        ran = _metric(after, "restyle_inference_seconds_count", model="duo") - _metric(
            before, "restyle_inference_seconds_count", model="duo"
        )
        assert dropped == 2 and ran == 1, (dropped, ran)
    finally:
        stop_server(srv)
