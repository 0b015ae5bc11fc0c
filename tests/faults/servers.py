"""A real ``restyle serve`` on loopback for the fault tests: ``tests.api.conftest.start_server`` with a storage
root and temporary folder of the test's own and no free-space floor, plus a ``preexec_fn`` (a file-size limit on
the server process) and a choice of what "started" means (``/readyz`` 200, or only ``/healthz``).

Also the raw-socket helpers the tests need to send what no well-behaved client sends.
"""

from __future__ import annotations

import json
import re
import resource
import signal
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.api.conftest import Server, start_server, stop_server

__all__ = ["Server", "abort_upload", "access_lines", "file_size_limit", "raw_request", "start", "stop_server"]


def file_size_limit(max_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: no file of the process may grow past ``max_bytes`` (a full disk, for that process);
    a write past it fails with EFBIG instead of killing the process with SIGXFSZ."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def start(
    models_dir: Path,
    root: Path,
    env: dict[str, str] | None = None,
    *,
    preexec_fn: Callable[[], None] | None = None,
    ready: bool = True,
    timeout: float = 180.0,
) -> Server:
    """``restyle serve --port 0`` with its storage root and temporary folder under ``root``.

    ``ready``: wait for ``/readyz`` 200; else only for ``/healthz`` (a server that reports not ready).
    ``RESTYLE_MIN_FREE_BYTES`` is 0 unless ``env`` says otherwise, so a test machine's disk does not decide.
    """
    (root / "storage").mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    defaults = {
        "RESTYLE_STORAGE_ROOT": str(root / "storage"),
        "RESTYLE_MIN_FREE_BYTES": "0",
        "TMPDIR": str(root / "tmp"),  # where Starlette spools multipart parts over 1 MB
    }
    return start_server(models_dir, {**defaults, **(env or {})}, timeout, preexec_fn=preexec_fn, ready=ready)


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        reply += chunk
        head, sep, body = reply.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if sep and length and len(body) >= int(length.group(1)):
            break
    return reply


def raw_request(server: Server, data: bytes, timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as it is and read one answer: (status, headers, body)."""
    with socket.create_connection(_address(server), timeout=timeout) as sock:
        sock.sendall(data)
        reply = _read_reply(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), reply[:500]
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def abort_upload(server: Server, path: str, headers: dict[str, str], first: bytes, declared: int) -> None:
    """Start an upload of ``declared`` bytes, send ``first``, then hang up abruptly (a reset, as a killed
    client or a dropped network does) without waiting for any answer."""
    sock = socket.create_connection(_address(server), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "x", **headers, "Content-Length": str(declared)}.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + first)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def access_lines(server: Server) -> list[dict[str, Any]]:
    """The server's structured access-log lines so far."""
    out = []
    for line in list(server.log):
        if line.startswith('{"event":"request"'):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``condition`` until it returns something truthy (a generous overall deadline, never a tight bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
