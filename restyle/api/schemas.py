"""Typed request and response bodies: they validate input and become the OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OutputFormat = Literal["jpeg", "jpg", "png", "webp"]
# On every answer a model made (a photo, a preview, a video job's result): which file ran, by content hash.
MODEL_VERSION_HEADER = "X-Model-Version"


class StylizeParams(BaseModel):
    """Options of ``POST /v1/stylize``, from the query string and/or multipart form fields."""

    model_config = ConfigDict(extra="ignore")

    style: str | None = Field(
        None,
        max_length=130,
        description="A style from GET /v1/styles; MODEL:STYLE picks one style of a multi-style model. "
        "Default: the server's default style.",
        examples=["starry_night"],
    )
    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 returns the photo, 1 the full stylization.")
    preserve_color: bool = Field(False, description="Keep the photo's colours; take only the stylized luminance.")
    max_size: int | None = Field(
        None, ge=16, description="Longest side of the result in pixels (never enlarges). Default: the server's."
    )
    format: OutputFormat = Field("jpeg", description="Encoding of the result.")
    quality: int = Field(90, ge=1, le=100, description="JPEG/WebP quality.")


class ErrorResponse(BaseModel):
    """Every error has this shape: no stack traces, no file paths."""

    error: str = Field(description="Machine-readable kind, e.g. unknown_style, queue_full.", examples=["unknown_style"])
    message: str = Field(description="One human-readable sentence.")
    status: int = Field(description="The HTTP status, repeated for clients that lose it.")
    request_id: str | None = Field(None, description="The X-Request-ID of this request, for support.")
    details: list[dict[str, Any]] | None = Field(None, description="Per-field problems for 422 validation errors.")


class StyleEntry(BaseModel):
    """One style a request can name: a single-style model, or one style inside a multi-style model."""

    name: str = Field(description="The value to pass as ``style``.")
    model: str = Field(description="The model file holding this style (several styles may share one model).")
    arch: str = Field(description="Network architecture (fast, johnson).")
    styles: list[str] = Field(description="Style names inside the model; more than one means MODEL:STYLE works.")
    precision: str
    size_bytes: int
    version: str = Field(
        description="The model file's version: the first 12 hex digits of its SHA-256. Photos stylized with it "
        "carry the same value in X-Model-Version; a model replaced under the same name gets a new one."
    )
    source: str = Field(description="bundled or user.")
    summary: dict[str, Any] = Field(default_factory=dict, description="Training summary stored in the model.")
    preview_url: str = Field(description="Thumbnail of the bundled sample photo in this style.")
    default: bool = Field(False, description="Used when a request names no style.")


class StylesResponse(BaseModel):
    styles: list[StyleEntry]
    default: str | None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class KindHealth(BaseModel):
    workers: int = Field(description="Live worker processes that take this kind of job.")
    pending: int = Field(description="Messages waiting on this kind's queue.")
    accepting: bool = Field(description="Whether a job of this kind is accepted now (else 503 no_worker).")


class Readiness(BaseModel):
    ready: bool
    models: list[str] = Field(default_factory=list, description="Models loaded and warmed up so far.")
    error: str | None = Field(
        None,
        description="Why the server is not ready, in one line: warm-up failed, the job queue unavailable, no job "
        "worker running (being started or restarted), or the storage root short of free space "
        "(RESTYLE_MIN_FREE_BYTES); null while warm-up is still running and nothing else is wrong. Never a path, a "
        "file name or a host: /readyz needs no key.",
    )
    jobs: dict[str, Any] | None = Field(
        None, description="Job queue health: broker (ok/unavailable), workers alive, messages pending."
    )
    kinds: dict[str, KindHealth] | None = Field(
        None,
        description="Per job kind (video, style): the live worker processes that take it, its messages pending, "
        "and whether a job of that kind is accepted now (false when workers are alive but none takes the kind: "
        "its submissions answer 503 no_worker). Informational: a kind without workers does not make the server "
        "unready (photos and the other kinds still work). Null while the job queue is unavailable.",
    )


# The error statuses every upload route shares, described once for the OpenAPI page.
UPLOAD_ERRORS: dict[int, str] = {
    401: "Missing or wrong API key (only when keys are configured).",
    408: "The upload did not arrive within RESTYLE_BODY_TIMEOUT.",
    415: "Not an image, truncated, or an unsupported content type.",
}


def error_docs(texts: dict[int, str]) -> dict[int, dict[str, Any]]:
    """FastAPI ``responses=``: each status documented with the one JSON error body (``ErrorResponse``)."""
    return {code: {"model": ErrorResponse, "description": text} for code, text in sorted(texts.items())}
