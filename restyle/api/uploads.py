"""Streaming an upload to a file: the reader for large bodies (videos) that must never sit in memory.

The photo route reads its (small) image into memory; a video may be
hundreds of megabytes, so it goes to disk chunk by chunk, with the limit
checked as bytes arrive. Either the raw body (``video/*`` or
``application/octet-stream``) or one multipart file field. Errors are the
API's shared ones (``restyle.api.errors``): 413 body too large, 415 wrong
content type, 422 a missing field, all in the one JSON error shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from restyle.api.errors import BodyTooLarge, UnsupportedMediaType

_CHUNK = 1 << 20
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


async def save_upload(
    request: Request, target: Path, *, field_name: str, limit: int, raw_types: tuple[str, ...]
) -> SavedUpload:
    """Write the upload to ``target``; raises before writing more than ``limit`` bytes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=16)
        except StarletteHTTPException as exc:  # malformed multipart: Starlette says 400; it is bad input
            raise body_error(field_name, f"malformed multipart body: {exc.detail}") from None
        try:
            upload = form.get(field_name)
            if not isinstance(upload, UploadFile):
                raise body_error(field_name, f"a multipart request needs a {field_name!r} file field", "missing")
            size = await _copy(upload, target, limit)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            filename = upload.filename
        finally:
            await form.close()
    elif content_type.startswith(raw_types):
        size = 0
        with open(target, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"the upload is larger than the limit of {limit} bytes")
                fh.write(chunk)
        fields, filename = {}, None
    else:
        raise UnsupportedMediaType(
            f"send the file as multipart/form-data (field {field_name!r}) or as a raw body "
            f"({', '.join(t.rstrip('/') + ('/*' if t.endswith('/') else '') for t in raw_types)}), "
            f"not {content_type or 'no content type'!r}"
        )
    if size == 0:
        raise body_error(field_name, "the upload is empty", "missing")
    return SavedUpload(size, filename, fields)


async def _copy(upload: UploadFile, target: Path, limit: int) -> int:
    size = 0
    with open(target, "wb") as fh:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the upload is larger than the limit of {limit} bytes")
            fh.write(chunk)
    return size
