"""Reading an upload: one reader for every route, into memory (photos) or a file (videos, style images).

``receive_upload`` takes either the raw body (a content type from the
route's list, e.g. ``image/*`` or ``video/*``, or
``application/octet-stream``) or one multipart file field, and copies it
chunk by chunk into a sink, with the limit checked as bytes arrive. A photo
goes to memory (``read_upload``); a video may be hundreds of megabytes, so
it goes to disk (``save_upload``), written in 1 MB pieces off the event loop.
The whole body must arrive within ``RESTYLE_BODY_TIMEOUT`` seconds, for every
route (408). Errors are the API's shared ones (``restyle.api.errors``): 408
too slow, 413 body too large, 415 wrong content type, 422 a missing field,
507 no room to write it (a multipart body larger than the temporary folder's
free space is refused before it is read; a write refused for lack of space
deletes the partial file), all in the one JSON error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TypeVar

from anyio import to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from restyle.api.errors import BodyTimeout, BodyTooLarge, StorageFull, UnsupportedMediaType, is_disk_full

_CHUNK = 1 << 20
# Starlette keeps a multipart file part in memory up to this size, then spools it to the temporary folder.
SPOOL_MAX_BYTES = 1 << 20
P = TypeVar("P", bound=BaseModel)


@dataclass
class SavedUpload:
    size: int
    filename: str | None  # the client's name for the file (multipart only): only its suffix is ever used
    fields: dict[str, str] = field(default_factory=dict)  # the other multipart fields (parameters)


def body_error(name: str, message: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 about one field of the request body, in FastAPI's validation-error shape."""
    return RequestValidationError([{"type": kind, "loc": ("body", name), "msg": message}])


def with_form_fields(query: P, fields: dict[str, str]) -> P:
    """``query`` (parameters from the URL) overridden by multipart form fields, validated by the same model.

    Errors in the form fields are reported at ``("body", field)``, as FastAPI does for body parameters.
    """
    if not fields:
        return query
    try:
        return type(query).model_validate({**query.model_dump(exclude_unset=True), **fields})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from None


class _Sink(Protocol):
    async def write(self, data: bytes, /) -> None: ...


class _MemorySink:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    async def write(self, data: bytes, /) -> None:
        self.buffer.write(data)


def _write_all(fh: IO[bytes], data: bytes) -> None:
    """Write every byte to an unbuffered file (a raw write may write part; the next part then raises)."""
    view = memoryview(data)
    while view:
        written = fh.write(view)
        if not written:  # no progress on a regular file: nothing more fits
            raise OSError(errno.ENOSPC, "no room to write the upload")
        view = view[written:]


class _FileSink:
    """Collects chunks and writes them to ``fh`` in ``_CHUNK`` pieces on a worker thread (disk I/O off the loop)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.pending = bytearray()

    async def write(self, data: bytes, /) -> None:
        self.pending += data
        if len(self.pending) >= _CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            data = bytes(self.pending)
            self.pending.clear()
            await to_thread.run_sync(_write_all, self.fh, data)


def _body_timeout(request: Request) -> float | None:
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "body_timeout", None)


async def receive_upload(
    request: Request,
    sink: _Sink,
    *,
    field_name: str,
    limit: int,
    raw_types: tuple[str, ...],
    what: str = "file",
    timeout: float | None = None,
) -> SavedUpload:
    """Copy the upload into ``sink`` chunk by chunk, raising before more than ``limit`` bytes have arrived.

    The one reader behind every upload route: a multipart form with one file
    field ``field_name`` (its other string fields come back as ``fields``),
    or a raw body whose content type starts with one of ``raw_types``. The
    body must arrive within ``timeout`` seconds (default: the app's
    ``body_timeout``), else ``BodyTimeout`` (408).
    """
    timeout = _body_timeout(request) if timeout is None else timeout
    reading = _receive(request, sink, field_name=field_name, limit=limit, raw_types=raw_types, what=what)
    if timeout is None:
        return await reading
    try:
        return await asyncio.wait_for(reading, timeout=timeout)
    except TimeoutError:
        raise BodyTimeout(f"the upload did not arrive within {timeout:g} s") from None


async def _receive(
    request: Request, sink: _Sink, *, field_name: str, limit: int, raw_types: tuple[str, ...], what: str
) -> SavedUpload:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        await _check_spool_space(request)
        try:
            form = await request.form(max_files=1, max_fields=16)  # text fields: Starlette's 1 MB each
        except StarletteHTTPException as exc:  # malformed multipart: Starlette says 400; it is bad input
            raise body_error(field_name, f"malformed multipart body: {exc.detail}") from None
        try:
            upload = form.get(field_name)
            if not isinstance(upload, UploadFile):
                raise body_error(field_name, f"a multipart request needs a {field_name!r} file field", "missing")
            size = 0
            while chunk := await upload.read(_CHUNK):
                size = _count(chunk, size, limit)
                await sink.write(chunk)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            filename = upload.filename
        finally:
            await form.close()
    elif content_type.startswith(raw_types):
        size = 0
        async for chunk in request.stream():
            size = _count(chunk, size, limit)
            await sink.write(chunk)
        fields, filename = {}, None
    else:
        raise UnsupportedMediaType(
            f"send the {what} as multipart/form-data (field {field_name!r}) or as a raw body "
            f"({', '.join(t.rstrip('/') + ('/*' if t.endswith('/') else '') for t in raw_types)}), "
            f"not {content_type or 'no content type'!r}"
        )
    if size == 0:
        raise body_error(field_name, f"the request contains no {what} bytes", "missing")
    return SavedUpload(size, filename, fields)


def declared_length(request: Request) -> int | None:
    """The request's ``Content-Length`` (None when absent: a chunked body)."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def _spool_free_bytes() -> int | None:
    try:
        from restyle.jobs.store import free_bytes

        return free_bytes(tempfile.gettempdir())
    except OSError:  # no usable temporary folder at all: the parser will say so
        return None


async def _check_spool_space(request: Request) -> None:
    """507 before reading a multipart body that Starlette would spool to a temporary folder with no room for it."""
    declared = declared_length(request)
    if declared is None or declared <= SPOOL_MAX_BYTES:
        return
    free = await to_thread.run_sync(_spool_free_bytes)
    if free is not None and free < declared:
        raise StorageFull("the server's temporary storage is full; retry later")


def _count(chunk: bytes, size: int, limit: int) -> int:
    size += len(chunk)
    if size > limit:
        raise BodyTooLarge(f"the upload is larger than the limit of {limit} bytes")
    return size


async def save_upload(
    request: Request, target: Path, *, field_name: str, limit: int, raw_types: tuple[str, ...]
) -> SavedUpload:
    """Stream the upload to the file ``target`` (videos, style images): it never sits in memory.

    The file is unbuffered, so closing it writes nothing more; when the upload fails (too large, too slow,
    the client gone, no room: ``StorageFull``, 507) the partial file is deleted.
    """
    fh = await to_thread.run_sync(lambda: open(target, "wb", buffering=0))  # noqa: SIM115 - closed below
    try:
        sink = _FileSink(fh)
        saved = await receive_upload(request, sink, field_name=field_name, limit=limit, raw_types=raw_types)
        await sink.flush()
        return saved
    except BaseException as exc:
        fh.close()  # no await here: this also runs when the request is cancelled
        with contextlib.suppress(OSError):
            target.unlink()
        if is_disk_full(exc):
            raise StorageFull("the server's storage is full: the upload could not be written; retry later") from None
        raise
    finally:
        fh.close()


async def read_upload(
    request: Request, *, field_name: str, limit: int, raw_types: tuple[str, ...], what: str = "file"
) -> tuple[bytes, SavedUpload]:
    """The upload in memory (photos: decoded from bytes at once), at most ``limit`` bytes."""
    sink = _MemorySink()
    saved = await receive_upload(request, sink, field_name=field_name, limit=limit, raw_types=raw_types, what=what)
    return sink.buffer.getvalue(), saved
