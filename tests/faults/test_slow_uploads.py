"""Fault injection against a real ``restyle serve``: 32 clients each trickle a 20 MB upload.

A slow-loris style attack: every connection declares a 20 MB body and sends
it a few kilobytes at a time. The server must answer each one without
reading the whole body (429 once admission is full, 408 when the body
deadline passes), keep ``/healthz`` fast meanwhile, hold memory bounded,
and serve normal requests again afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bench.hostile import vm_mb
from tests.api.conftest import start_server, stop_server
from tests.conftest import SAMPLE_PHOTO

CLIENTS = 32
BODY = 20_000_000
CHUNK = 16_384


def _trickle(host: str, port: int, stop: threading.Event, statuses: list[int]) -> None:
    """Declare a 20 MB JPEG body, send it 16 KB every 50 ms, and record the status the server answers with."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(
        f"POST /v1/stylize HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {BODY}\r\n\r\n".encode()
    )
    sock.setblocking(False)
    reply = b""
    chunk = b"\xff" * CHUNK
    while not stop.is_set() and b"\r\n" not in reply:
        with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
            sock.send(chunk)
        try:
            reply += sock.recv(4096)
        except BlockingIOError:
            pass
        except ConnectionResetError:
            break
        time.sleep(0.05)
    sock.close()
    statuses.append(int(reply.split()[1]) if reply.startswith(b"HTTP/1.1") else -1)


@pytest.mark.slow
def test_32_slow_20mb_uploads_keep_the_server_responsive_and_bounded(model_dir: Path) -> None:
    server = start_server(model_dir, env={"RESTYLE_BODY_TIMEOUT": "3", "RESTYLE_ACCESS_LOG": "false"})
    try:
        pid = server.proc.pid
        url = urlsplit(server.url)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/v1/stylize", content=SAMPLE_PHOTO.read_bytes(), headers={"content-type": "image/jpeg"}).status_code == 200  # fmt: skip
            baseline = vm_mb(pid, "VmRSS")
            stop, statuses = threading.Event(), []
            clients = [
                threading.Thread(target=_trickle, args=(url.hostname, url.port, stop, statuses), daemon=True)
                for _ in range(CLIENTS)
            ]
            for t in clients:
                t.start()
            health = []
            deadline = time.monotonic() + 20
            while len(statuses) < CLIENTS and time.monotonic() < deadline:
                t0 = time.monotonic()
                assert client.get("/healthz").status_code == 200
                health.append(time.monotonic() - t0)
                time.sleep(0.2)
            stop.set()
            for t in clients:
                t.join(10)
            peak = vm_mb(pid, "VmHWM")
            # every upload was answered, none by reading 20 MB: full admission says 429, the body deadline 408
            assert len(statuses) == CLIENTS and set(statuses) <= {408, 429}, statuses
            assert statuses.count(429) >= CLIENTS - 18 and statuses.count(408) >= 1, statuses
            assert max(health) < 1.0, health  # liveness answered throughout
            assert peak - baseline < 150, (baseline, peak)  # 32 x 20 MB would be 640 MB
            # and it recovers: a normal upload right after the storm works
            ok = client.post("/v1/stylize", content=SAMPLE_PHOTO.read_bytes(), headers={"content-type": "image/jpeg"})
            assert ok.status_code == 200
    finally:
        stop_server(server)
