"""One JSON error shape for every failure, and the handlers that produce it.

``restyle.errors.UserError`` already carries the right HTTP status (404
unknown style, 413 too many pixels, 415 not an image...), so one handler
maps the whole family; validation errors and Starlette's own HTTP errors
are reshaped to the same body. Messages are scrubbed of anything that looks
like a file path, and unexpected exceptions become a bare 500 (logged with
the request ID, never echoed), so no response leaks the server's layout.

Two failures that are no bug get their own handlers: a disk (or file-size
limit) that refuses a write is a 507 ``storage_full``, wherever it happens
(an upload, a multipart part spooled to the temporary folder, a file of a
job); a client that hung up mid-upload (Starlette's ``ClientDisconnect``) is
logged at info and counted as 499, as nginx does, never as a 500.
"""

from __future__ import annotations

import errno
import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from restyle.errors import BadImage, BrokenModel, ImageTooLarge, UnknownStyle, UserError, scrub


class BodyTooLarge(UserError):
    """More request bytes than ``max_upload_bytes``; raised before the rest is read."""

    http_status = 413


class BodyTimeout(UserError):
    """The upload's body did not arrive within ``body_timeout`` (a slow or stalled client)."""

    http_status = 408


class Unauthorized(UserError):
    http_status = 401


class UnsupportedMediaType(UserError):
    http_status = 415


class StorageFull(UserError):
    """No room for the upload (or the job's files): a condition the client can wait out, so it is told (507).

    The message names amounts at most, never a path.
    """

    http_status = 507
    public_message = True


# A write refused for lack of space: a full file system, a full quota, or a file-size limit (RLIMIT_FSIZE).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that closed the connection before the answer

log = logging.getLogger("restyle.api")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for lack of space (``DISK_FULL_ERRNOS``)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


# Machine-readable names for the UserError subclasses a client can meet.
_KINDS: dict[type[UserError], str] = {
    UnknownStyle: "unknown_style",
    BadImage: "bad_image",
    ImageTooLarge: "too_many_pixels",
    BodyTooLarge: "body_too_large",
    Unauthorized: "unauthorized",
    UnsupportedMediaType: "unsupported_media_type",
    BrokenModel: "broken_model",
}
# Rejection reasons counted in restyle_rejections (queue_full and deadline are counted by admission).
_REJECTION_REASONS = {401: "unauthorized", 408: "slow_body", 413: "too_large", 415: "bad_input", 422: "bad_input"}


def kind_of(exc: UserError) -> str:
    """The error's machine-readable name: its class's ``error_kind``, a known kind, or the class name in snake case."""
    explicit = getattr(type(exc), "error_kind", None)
    if isinstance(explicit, str):
        return explicit
    for cls in type(exc).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
        if cls is UserError:
            break
    name = type(exc).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if name != "UserError" else "bad_request"


def error_response(
    request: Request | None,
    status: int,
    error: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request is not None and status in _REJECTION_REASONS:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.rejections.labels(_REJECTION_REASONS[status]).inc()
    body: dict[str, Any] = {"error": error, "message": scrub(message), "status": status, "request_id": request_id}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


async def user_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UserError)
    status = exc.http_status
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    # 5xx messages stay in the log unless the error says the client may read them (503 and job quotas do).
    if status >= 500 and not getattr(exc, "public_message", status == 503):
        # e.g. MissingWeights: a deployment problem the client cannot fix; keep the detail in the log.
        return error_response(
            request, status, "server_error", "the server cannot serve this request now", None, headers
        )
    return error_response(request, status, kind_of(exc), str(exc), None, headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]
    fields = ", ".join(d["loc"][-1] for d in details if d["loc"]) or "request"
    return error_response(request, 422, "invalid_parameters", f"invalid value for: {fields}", details)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return error_response(
        request, exc.status_code, phrase.lower().replace(" ", "_"), detail, None, dict(exc.headers or {})
    )


async def os_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A full disk (or file-size limit) is a 507 in the one JSON shape; any other OSError is a bug (500)."""
    if not is_disk_full(exc):
        raise exc  # the request-context middleware logs it and answers a bare 500
    log.warning("request %s: a write was refused: %s", getattr(request.state, "request_id", "?"), scrub(str(exc)))
    return error_response(request, 507, "storage_full", "the server's storage is full; retry later")


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    """The client closed the connection mid-upload: nobody reads an answer. Logged at info, counted as 499."""
    request_id = getattr(request.state, "request_id", "?")
    log.info("request %s: the client closed the connection before the upload ended", request_id)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.rejections.labels("disconnected").inc()
    return Response(status_code=CLIENT_CLOSED_REQUEST)  # for the access log and metrics; never delivered


def install(app: FastAPI) -> None:
    """Register the handlers on ``app`` (500s are produced by the request-context middleware)."""
    app.add_exception_handler(UserError, user_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(OSError, os_error_handler)
    app.add_exception_handler(ClientDisconnect, client_disconnect_handler)
