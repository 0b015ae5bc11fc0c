"""The HTTP endpoints. Thin: parsing and status codes here, the work in ``StyleService``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from restyle.api.deps import (
    AdmissionDep,
    CallerDep,
    InferenceDep,
    MetricsDep,
    ServiceDep,
    SettingsDep,
    require_api_key,
)
from restyle.api.inference import DirectInference, MicroBatcher, PhotoRequest
from restyle.api.schemas import (
    MODEL_VERSION_HEADER,
    UPLOAD_ERRORS,
    Health,
    KindHealth,
    Readiness,
    StyleEntry,
    StylesResponse,
    StylizeParams,
    error_docs,
)
from restyle.api.styles import hidden_styles, style_visible
from restyle.api.uploads import body_error, read_upload, with_form_fields
from restyle.errors import UnknownStyle
from restyle.imaging import MIME_TYPES, normalize_format
from restyle.jobs.store import QueueUnavailable, storage_problem
from restyle.runtime import StylizeOptions
from restyle.runtime.service import Choice, StyleService
from restyle.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
RAW_TYPES = ("image/", "application/octet-stream")

_errors = error_docs(
    {
        **UPLOAD_ERRORS,
        404: "Unknown style (or another API key's user style).",
        413: "Body over max_upload_bytes, or image over max_pixels.",
        422: "Invalid parameters or no image.",
        429: "Queue full; see Retry-After.",
        503: "Deadline exceeded or not ready.",
        507: "No room to receive the upload (a multipart part is spooled to the temporary folder).",
    }
)

public = APIRouter()
api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses={401: _errors[401]})
ops = APIRouter(dependencies=[Depends(require_api_key)])


async def _read_upload(request: Request, params: StylizeParams, limit: int) -> tuple[bytes, StylizeParams]:
    """The image bytes and the parameters, from a multipart form or from a raw image body plus query.

    The one upload reader applies ``body_timeout`` (408) and the size limit (413).
    """
    data, upload = await read_upload(request, field_name="image", limit=limit, raw_types=RAW_TYPES, what="image")
    fields = {k: v for k, v in upload.fields.items() if k in StylizeParams.model_fields}
    return data, with_form_fields(params, fields)


async def resolve_visible(request: Request, service: StyleService, style: str | None) -> Choice:
    """The style choice, 404 (as an unknown style) when it is another API key's user style.

    Only user models can belong to a key, so only they cost a broker read (off the event loop): bundled
    styles keep working while the broker is busy or down.
    """
    choice = service.resolve(style)
    if service.registry.info(choice.model).source == "user" and not await run_in_threadpool(
        style_visible, request, choice.model
    ):
        raise UnknownStyle(f"unknown style {style or choice.model!r}; see GET /v1/styles")
    return choice


_STYLIZE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Either a multipart form with an `image` file (other fields as form fields or query "
        "parameters), or the raw image bytes with an image content type (fields as query parameters).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        **{
                            name: {"type": "string", "description": field.description or ""}
                            for name, field in StylizeParams.model_fields.items()
                        },
                    },
                }
            },
            **{
                mime: {"schema": {"type": "string", "format": "binary"}}
                for mime in ("image/jpeg", "image/png", "image/webp")
            },
        },
    }
}


@api.post(
    "/stylize",
    summary="Stylize a photo",
    response_class=Response,
    openapi_extra=_STYLIZE_BODY,
    responses={
        200: {
            "description": "The stylized image.",
            "content": {mime: {} for mime in MIME_TYPES.values()},
            "headers": {
                "X-Model": {"description": "The style that ran (MODEL or MODEL:STYLE).", "schema": {"type": "string"}},
                "X-Model-Version": {
                    "description": "The version of the model that ran: its file's short SHA-256 (as in GET "
                    "/v1/styles and the /v2/models metadata).",
                    "schema": {"type": "string"},
                },
                "X-Inference-Time-Ms": {"description": "Time in the stylizer, ms.", "schema": {"type": "number"}},
                "Server-Timing": {"description": "queue and inference durations, ms.", "schema": {"type": "string"}},
            },
        },
        **{code: _errors[code] for code in (404, 408, 413, 415, 422, 429, 503, 507)},
    },
)
async def stylize(
    request: Request,
    params: Annotated[StylizeParams, Query()],
    settings: SettingsDep,
    service: ServiceDep,
    admission: AdmissionDep,
    inference: InferenceDep,
) -> Response:
    """Stylize one photo; inference runs in the bounded pool, never on the event loop.

    The pool place is reserved before the body is read (a full server answers
    429 without buffering the upload), and the body must arrive within
    ``body_timeout`` seconds (408), so slow clients cannot hold memory.
    """
    with admission.reserve() as slot:
        data, params = await _read_upload(request, params, settings.max_upload_bytes)
        return await _stylize(request, data, params, settings, service, inference, slot)


async def _stylize(
    request: Request,
    data: bytes,
    params: StylizeParams,
    settings: Settings,
    service: StyleService,
    inference: DirectInference | MicroBatcher,
    slot: Any,
) -> Response:
    """Validate, resolve the style, and run the pipeline through the app's one inference strategy."""
    max_size = params.max_size or settings.max_size
    if max_size > settings.max_size_limit:
        raise body_error("max_size", f"max_size must be at most {settings.max_size_limit}", "less_than_equal")
    choice = await resolve_visible(request, service, params.style)
    options = StylizeOptions(
        strength=params.strength, preserve_color=params.preserve_color, max_size=max_size, style_weights=choice.style
    )
    fmt = normalize_format(params.format)
    deadline = time.monotonic() + settings.request_timeout
    done = await inference.run(
        PhotoRequest(choice, data, options, fmt, params.quality, deadline, slot, request.is_disconnected)
    )
    body = done.body
    version = await run_in_threadpool(service.version, choice.model)  # cached; a stat to see the file is unchanged
    ms = {"queue": round(done.queue_s * 1000, 1), "inference": round(done.inference_s * 1000, 1)}
    suffix = "jpg" if fmt == "JPEG" else fmt.lower()
    return Response(
        body,
        media_type=MIME_TYPES[fmt],
        headers={
            "X-Model": choice.label,
            MODEL_VERSION_HEADER: version,
            "X-Inference-Time-Ms": str(ms["inference"]),
            "Server-Timing": f"queue;dur={ms['queue']}, inference;dur={ms['inference']}",
            "Content-Disposition": f'inline; filename="restyled-{choice.model}.{suffix}"',
            "Cache-Control": "no-store",
        },
    )


@api.get("/styles", summary="Installed styles with metadata", response_model=StylesResponse)
async def list_styles(request: Request, service: ServiceDep, caller: CallerDep) -> StylesResponse:
    """Every style the caller can name: bundled styles, user models nobody owns, and the caller's own user styles
    (other API keys' are left out; an admin key sees all)."""
    default = service.default_model()
    root = request.scope.get("root_path", "")
    hidden: set[str] = set()
    owners_unknown = False
    if caller.keyed and not caller.admin:  # only then does anything depend on owners (a broker read)
        try:
            hidden = await run_in_threadpool(lambda: hidden_styles(request.app.state.jobs.store, caller))
        except QueueUnavailable:  # owners unknown: list what nobody owns for sure (bundled) rather than fail
            owners_unknown = True
    entries = []
    for name in service.style_names():
        choice = service.resolve(name)
        if name in hidden or choice.model in hidden:
            continue
        info = service.registry.info(choice.model)
        if owners_unknown and info.source != "bundled":
            continue
        entries.append(
            StyleEntry(
                name=name,
                model=choice.model,
                arch=info.arch,
                styles=list(info.style_names),
                precision=info.precision,
                size_bytes=info.size_bytes,
                version=info.version,
                source=info.source,
                summary=dict(info.summary or {}),
                preview_url=root + request.app.url_path_for("style_preview", name=name),
                default=name == default,
            )
        )
    return StylesResponse(styles=entries, default=default)


@api.get(
    "/styles/{name}/preview",
    name="style_preview",
    summary="Thumbnail of the sample photo in this style",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: _errors[404], 429: _errors[429], 503: _errors[503]},
)
async def style_preview(
    name: str, request: Request, service: ServiceDep, settings: SettingsDep, admission: AdmissionDep
) -> Response:
    choice = await resolve_visible(request, service, name)  # 404 before queueing (another key's style too)
    data = await admission.run(lambda: service.preview(name), deadline=time.monotonic() + settings.request_timeout)
    # A user style may be deleted and trained again under the same name: no hour-long cache for those.
    cache = "public, max-age=3600" if service.source(name) == "bundled" else "no-cache"
    version = await run_in_threadpool(service.version, choice.model)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": cache, MODEL_VERSION_HEADER: version})


@public.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> Health:
    return Health()


@public.get(
    "/readyz",
    summary="Readiness: models warmed up, job queue, job worker and storage space",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Still warming up (or warm-up failed), the job queue unreachable, the server's own job "
            "worker not running (it is restarted), or the storage root short of free space; `error` says which. "
            "`kinds` reports each job kind's workers without affecting readiness.",
        }
    },
)
async def readyz(request: Request, service: ServiceDep, settings: SettingsDep) -> Any:
    """Open without a key, so nothing here names a path, a host or a broker URL."""
    body = await readiness(request, service, settings)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


async def readiness(request: Request, service: StyleService, settings: Settings) -> Readiness:
    """The server's readiness, for ``/readyz`` and the Open Inference Protocol's ``/v2/health/ready``.

    The job broker is part of readiness (job routes and state need it), and so is free space on the
    storage root (``min_free_bytes``): uploads and results would fail. The worker that ``restyle serve``
    supervises must report alive (its heartbeat, within ``worker_ttl``): while it is down, jobs would be
    accepted and wait for nobody. An API with external workers (``--job-workers 0``) only counts them.

    Job kinds are reported (``kinds``) but never make the server unready: a readiness probe that fails
    takes the whole replica out of its load balancer, photos and the kinds that do have workers included,
    to fix nothing. A kind that live workers exist for, none of which takes it, is refused where it is
    submitted instead (503 ``no_worker``, at once), and ``kinds.<kind>.accepting`` says so here.
    """
    app = request.app
    health = await run_in_threadpool(app.state.jobs.health)
    jobs = health.jobs
    problems = [] if jobs["broker"] == "ok" else ["the job queue is unavailable"]
    if jobs["broker"] == "ok" and not _worker_ready(app, health.alive):
        problems.append("no job worker is running (it is being started or restarted)")
    if storage := await run_in_threadpool(storage_problem, settings):
        problems.append(storage)
    ready = service.ready and not problems
    error = service.warmup_error or (problems[0] if problems else None)
    kinds = None if health.kinds is None else {kind: KindHealth(**value) for kind, value in health.kinds.items()}
    return Readiness(ready=ready, models=list(service.warmed), error=error, jobs=jobs, kinds=kinds)


def _worker_ready(app: Any, alive: set[str]) -> bool:
    supervisor = getattr(app.state, "job_supervisor", None)
    if supervisor is not None:
        name = supervisor.worker_name
        return name is not None and name in alive
    return bool(alive) or not getattr(app.state, "require_job_workers", False)


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics_endpoint(metrics: MetricsDep, admission: AdmissionDep) -> Response:
    metrics.queue_depth.set(admission.waiting)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@public.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})
