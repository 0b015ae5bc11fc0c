"""Pure ASGI middleware: request IDs, access log, HTTP metrics, the last-resort 500, the concurrency limit and
the body limit.

Pure ASGI (not ``BaseHTTPMiddleware``) because we must see the response
status and the end of streaming bodies, add a header to every response,
and count request bytes as they arrive without buffering them.

The concurrency limit (``RESTYLE_LIMIT_CONCURRENCY``) is enforced here rather
than by uvicorn's ``--limit-concurrency``, whose 503 is plain text: ours is
the API's JSON error, with a request ID, counted in the metrics.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restyle.api.errors import CLIENT_CLOSED_REQUEST, BodyTooLarge
from restyle.api.metrics import Metrics

access_log = logging.getLogger("restyle.access")
error_log = logging.getLogger("restyle.api")

REQUEST_ID_HEADER = "x-request-id"
# A client-supplied ID is kept (for tracing across services) only if it is short and harmless in logs.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def json_error(status: int, error: str, message: str, request_id: str) -> bytes:
    """The API's error body, for answers made outside the app's exception handlers."""
    body = {"error": error, "message": message, "status": status, "request_id": request_id}
    return json.dumps(body, separators=(",", ":")).encode()


async def send_json_error(
    send: Send, status: int, error: str, message: str, request_id: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json_error(status, error, message, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER.encode(), request_id.encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _route_label(scope: Scope) -> str:
    """The route template FastAPI matched, so labels stay bounded whatever the client requests."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "unmatched"


class RequestContextMiddleware:
    """Outermost layer: request ID in and out, one JSON access-log line, metrics, and JSON 500s."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log_requests: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 0
        sent_bytes = 0
        extra: dict[str, Any] = {}

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                for name in ("x-model", "x-model-version", "x-inference-time-ms"):
                    if name in headers:
                        extra[name.replace("x-", "").replace("-", "_")] = headers[name]
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:  # the client hung up mid-upload (outside a route): no bug, nobody to answer
            error_log.info("request %s: the client closed the connection before the upload ended", request_id)
            status = status or CLIENT_CLOSED_REQUEST
        except Exception:
            error_log.exception("unhandled error in request %s", request_id)
            if status == 0:  # nothing sent yet: answer with the JSON shape, never a trace
                status = 500
                await send_json_error(send, 500, "internal_error", "internal server error", request_id)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(elapsed)
            if self.log_requests:
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "event": "request",
                            "request_id": request_id,
                            "method": method,
                            "path": scope.get("path", ""),
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "bytes_sent": sent_bytes,
                            "client": client[0] if client else None,
                            **extra,
                        },
                        separators=(",", ":"),
                    )
                )


class ConcurrencyLimitMiddleware:
    """At most ``limit`` HTTP requests in progress at once in this process; beyond, an immediate JSON 503.

    What uvicorn's ``--limit-concurrency`` did (it answered in plain text): a request beyond the limit is
    refused before a byte of its body is read, with ``Retry-After: 1``. ``exempt`` paths (``/healthz``: a
    liveness probe must not fail because the server is busy) are always served.
    """

    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics | None = None, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.exempt = frozenset(exempt)
        self.active = 0  # one event loop per process: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            if self.metrics is not None:
                self.metrics.rejections.labels("concurrency").inc()
            request_id = scope.get("state", {}).get("request_id") or uuid.uuid4().hex
            message = f"the server is handling {self.limit} requests already; retry in a moment"
            await send_json_error(send, 503, "server_busy", message, request_id, [(b"retry-after", b"1")])
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes: at once from Content-Length, else as the bytes stream in.

    Either way only up to ``limit`` bytes are ever read, so a 10 GB upload
    costs us no more memory than a 20 MB one.
    """

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        # Per-path overrides: video uploads are legitimately larger than photos.
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.limit)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                # Let the app's exception handler shape the response (JSON, metrics) without reading a byte.
                scope["restyle.body_too_large"] = True

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if scope.get("restyle.body_too_large"):
                raise BodyTooLarge(f"request body is larger than the limit of {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    scope["restyle.body_too_large"] = True
                    raise BodyTooLarge(f"request body is larger than the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
