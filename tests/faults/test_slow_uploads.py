"""Fault injection against a real ``restyle serve``: 32 clients each trickle a 20 MB upload.

A slow-loris style attack: every connection declares a 20 MB body and sends
it a few kilobytes at a time. The server must answer each one without
reading the whole body (429 once admission is full, 408 when the body
deadline passes), keep answering ``/healthz`` meanwhile, hold memory
bounded, and serve normal requests again afterwards.

Nothing here is timed: the test waits until the first uploads hold every
admission place (``/metrics``), and then checks the order of events: ``/healthz``
and the 429s are answered while those uploads are still trickling, and only
the body deadline ends them.
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


def _queue_depth(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("restyle_queue_depth "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.slow
def test_32_slow_20mb_uploads_keep_the_server_responsive_and_bounded(model_dir: Path) -> None:
    places = 4  # 1 running + 3 waiting
    env = {
        "RESTYLE_BODY_TIMEOUT": "10",
        "RESTYLE_ACCESS_LOG": "false",
        "RESTYLE_POOL_SIZE": "1",
        "RESTYLE_QUEUE_SIZE": "3",
    }
    server = start_server(model_dir, env=env)
    try:
        pid = server.proc.pid
        url = urlsplit(server.url)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.post("/v1/stylize", content=SAMPLE_PHOTO.read_bytes(), headers={"content-type": "image/jpeg"}).status_code == 200  # fmt: skip
            baseline = vm_mb(pid, "VmRSS")
            stop = threading.Event()
            holding: list[int] = []  # what the uploads that took the places were answered
            rest: list[int] = []  # what the others were answered

            def start(n: int, statuses: list[int]) -> list[threading.Thread]:
                threads = [
                    threading.Thread(target=_trickle, args=(url.hostname, url.port, stop, statuses), daemon=True)
                    for _ in range(n)
                ]
                for t in threads:
                    t.start()
                return threads

            holders = start(places, holding)
            give_up = time.monotonic() + 60  # a safety net only
            while _queue_depth(client) < places:  # every place is reserved by a body still trickling in
                assert time.monotonic() < give_up and not holding, holding
                time.sleep(0.02)
            assert client.get("/healthz").status_code == 200  # liveness while admission is full...
            others = start(CLIENTS - places, rest)
            for t in others:
                t.join(60)
            assert rest == [429] * (CLIENTS - places), rest  # ...and the rest refused at once, body unread,
            assert holding == [], holding  # all while the first uploads were still trickling
            for t in holders:
                t.join(60)  # until the body deadline answers them
            stop.set()
            peak = vm_mb(pid, "VmHWM")
            assert holding == [408] * places, holding  # none read 20 MB: the body deadline cut each one off
            assert peak - baseline < 150, (baseline, peak)  # 32 x 20 MB would be 640 MB
            assert _queue_depth(client) == 0  # their places are free again
            # and it recovers: a normal upload right after the storm works
            ok = client.post("/v1/stylize", content=SAMPLE_PHOTO.read_bytes(), headers={"content-type": "image/jpeg"})
            assert ok.status_code == 200
    finally:
        stop_server(server)
