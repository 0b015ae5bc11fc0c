"""``/v1/styles``: new styles trained from an uploaded image as jobs; their status, training preview and deletion.

The catalogue (``GET /v1/styles``) and the sample-photo thumbnails
(``GET /v1/styles/{name}/preview``) are in ``routes.py``; this router adds the
life of *user* styles, on the job system of ``jobs.py``:

* ``POST /v1/styles``: multipart ``name``, ``image`` and optional ``steps`` and
  ``base`` (or the raw image with those as query parameters). Everything is
  checked before anything is queued: the name (valid, not taken by a style
  or by a training in progress), the base (installed, multi-style), the image
  (a real picture, no bomb, at least 64 px on its shorter side), the quotas.
  The image is stored re-encoded as PNG in the job's folder and a ``style`` job
  is queued: ``restyle train --add-style`` in a worker (``restyle.jobs.tasks.style``).
  202 with the job, and ``Location: /v1/styles/NAME``.
* ``GET /v1/styles/{name}``: a training style's state, progress and preview, or ``ready``.
* ``GET /v1/styles/{name}/training-preview``: the latest sample grid of its training (PNG).
* ``POST /v1/styles/{name}/cancel``: stop its training.
* ``DELETE /v1/styles/{name}``: stop its training if any and remove its model (204); bundled: 403.

A style's name is its key: at most one training per name at a time, and a
name's status is that of its newest job. The model files live in the user
models folder (``Settings.user_models_dir``), which every replica and worker
scans on each look-up, so a new style is usable at once and a deleted one is
gone at once, without a restart.

Submission is ``restyle.api.submission`` (shared with video jobs). With API
keys a user style belongs to the key that trained it (``style-owner:NAME``
in the broker, written when its training is queued): other keys get 404 for
its status, preview, cancel and delete; an admin key sees and manages all.
A model nobody owns (bundled, or put into the models folder by the operator)
is visible to every key; only an admin key may delete an unowned user model.
Names stay one namespace: a name taken by another key's style is a 409.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import threading
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from restyle.api.deps import Caller, CallerDep, get_caller, require_api_key
from restyle.api.jobs import JobNotReady, JobQueue, JobResponse, get_jobs
from restyle.api.schemas import UPLOAD_ERRORS, ErrorResponse, error_docs
from restyle.api.submission import (
    IDEMPOTENCY_PARAMETER,
    RESERVED,
    Prepared,
    SubmitSpec,
    Upload,
    forget_style_owner,
    location,
    set_style_owner,
    style_owner,
    style_owners,
    submit,
)
from restyle.api.uploads import body_error, with_form_fields
from restyle.errors import UnknownStyle, UserError
from restyle.imaging import decode_image, encode_image
from restyle.jobs.store import ACTIVE, Job, JobStore, style_use_record_every
from restyle.jobs.tasks.style import PREVIEW  # a light module: training is imported in its functions
from restyle.runtime.registry import remove_model, valid_name
from restyle.runtime.service import StyleService

MIN_STYLE_SIDE = 64  # a smaller style image has too little texture for its Gram statistics
STORED_MAX_SIDE = 2048  # the stored style image's longest side (training uses its shorter side at style_style_size)
STOP_WAIT_S = 15.0  # how long DELETE waits for a running training to stop (a step, at most, plus a poll)


class StyleNameTaken(UserError):
    http_status = 409


class BundledStyle(UserError):
    """Bundled styles ship with the package and cannot be deleted."""

    http_status = 403


class StyleBusy(UserError):
    """A training that did not stop in time for a DELETE: the client may simply retry."""

    http_status = 409
    retry_after = 5


class TooManyStyles(UserError):
    """The key owns ``max_styles_per_key`` user styles (installed or training) already."""

    http_status = 429


class PreviewNotReady(UserError):
    http_status = 404


class Forbidden(UserError):
    """A user model no key owns (the operator installed it): only an admin key may delete it."""

    http_status = 403


# -- request and response models ----------------------------------------------------------------------
class StyleJobParams(BaseModel):
    """Options of ``POST /v1/styles`` (multipart form fields beside ``image``, or query parameters)."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(
        None, description="The new style's name: lowercase letters, digits, '-' and '_' (at most 64)."
    )
    steps: int | None = Field(
        None, ge=1, description="Training steps (default RESTYLE_STYLE_STEPS; at most RESTYLE_STYLE_MAX_STEPS)."
    )
    base: str | None = Field(
        None, max_length=130, description="Multi-style model to build on (default RESTYLE_STYLE_BASE)."
    )


class StyleAccepted(BaseModel):
    """The answer to ``POST /v1/styles``: the training job, and where to follow it."""

    name: str
    job: JobResponse
    status_url: str = Field(description="GET it for state and progress (also the Location header).")
    preview_url: str = Field(description="The latest training preview (PNG), once the first one is written.")


class StyleStatus(BaseModel):
    """Where a style stands: training (with progress), failed or cancelled, or ready to use."""

    name: str
    kind: Literal["bundled", "user"]
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "ready"] = Field(
        description="ready: installed, usable as `style` in /v1/stylize and video jobs; else its training job's state."
    )
    progress: float = Field(description="0..1: training steps done / planned (1 once ready).")
    step: int = Field(description="Training steps done.")
    steps: int = Field(description="Training steps planned (0 when unknown).")
    error: str | None = Field(None, description="Why the training failed or was cancelled.")
    job_id: str | None = Field(
        None,
        description="The training job (GET /v1/jobs/{id}), while it is on record; shown only to the key that owns "
        "it (and admin keys).",
    )
    preview_url: str | None = Field(
        None,
        description="An image of the style: the training preview while it trains, the sample photo in the style "
        "once ready; null while there is none yet.",
    )
    training_preview_url: str | None = Field(None, description="The latest training preview, while one is kept.")


_errors = error_docs(
    {
        **UPLOAD_ERRORS,
        403: "A bundled style (only user styles can be deleted), or a user model no key owns (admin keys only).",
        404: "Unknown style (or base model), or another API key's style.",
        409: "The name is taken (by a style or a training in progress), the training is still stopping, or a "
        "request with the same Idempotency-Key is in progress.",
        413: "Upload over max_upload_bytes, or image over max_pixels (a decompression bomb).",
        422: "Invalid name or steps, a single-style base, an image under 64 px, or no image.",
        429: "The job queue, or this key's share of it, is full; or the key has max_styles_per_key styles.",
        503: "The job queue (broker) is unavailable or did not answer within RESTYLE_BROKER_TIMEOUT; or (no_worker) "
        "job workers are alive but none can train styles (start `restyle worker --kinds style` where "
        "restyle[train] is installed).",
        507: "Job storage is full.",
    }
)

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A multipart form with the style `image` file and the fields below, or the raw image bytes "
        "with an image content type (the fields as query parameters).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "The style image."},
                        **{
                            name: {"type": "string", "description": field.description or ""}
                            for name, field in StyleJobParams.model_fields.items()
                        },
                    },
                }
            },
            **{mime: {"schema": {"type": "string", "format": "binary"}} for mime in ("image/jpeg", "image/png")},
        },
    }
}

JobsDep = Annotated[JobQueue, Depends(get_jobs)]
router = APIRouter(
    prefix="/v1/styles", tags=["styles"], dependencies=[Depends(require_api_key)], responses={401: _errors[401]}
)


# -- helpers ------------------------------------------------------------------------------------------
def _service(request: Request) -> StyleService:
    return request.app.state.service


def _jobs_of(store: JobStore, name: str, owner: str | None = None) -> list[Job]:
    """The style jobs for ``name`` still on record (not expired), oldest first; only ``owner``'s when given."""
    found = [
        j
        for j in store.all()
        if j.kind == "style"
        and j.style == name
        and j.state not in ("expired", RESERVED)
        and (owner is None or j.owner == owner)
    ]
    return sorted(found, key=lambda j: j.created_at)


def _owned(store: JobStore, caller: Caller, name: str) -> tuple[str | None, list[Job]]:
    """The owner of the style ``name`` and its jobs (that owner's); 404 when it is another key's.

    Another key's style answers exactly as a style that does not exist, so its
    existence is not revealed (only a name-taken 409 on creation reveals it).
    """
    if not valid_name(name):
        raise UnknownStyle(f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
    owner = style_owner(store, name)
    if not caller.sees(owner):
        raise UnknownStyle(f"unknown style {name!r}; see GET /v1/styles")
    return owner, _jobs_of(store, name, owner)


def hidden_styles(store: JobStore, caller: Caller) -> set[str]:
    """The user styles the caller must not see (other keys'): for the catalogue (``GET /v1/styles``)."""
    if not caller.keyed or caller.admin:
        return set()
    return {name for name, owner in style_owners(store).items() if not caller.sees(owner)}


def style_visible(request: Request, name: str) -> bool:
    """Whether the request's caller may see (and use) the user style or model ``name``: False for another key's.

    The photo routes ask it before they use a user model, so a True answer is also recorded as a use of it
    (``style_retention``; at most hourly per style and process, best effort).
    """
    caller = get_caller(request)
    jobs: JobQueue = request.app.state.jobs
    model = name.split(":", 1)[0]
    if caller.keyed and not caller.admin and not caller.sees(style_owner(jobs.store, model)):
        return False
    record_style_use(jobs, model)
    return True


_recorded_uses: dict[tuple[str, str], float] = {}  # (storage root, style) -> when this process last wrote a use
_recorded_lock = threading.Lock()


def record_style_use(jobs: JobQueue, name: str, now: float | None = None) -> None:
    """Write ``style-used:NAME`` for the user style ``name`` if this process has not for a while (an hour, or
    a quarter of a shorter ``style_retention``); the broker being down costs nothing but the record."""
    settings = jobs.settings
    if settings.style_retention <= 0:
        return
    now = time.time() if now is None else now
    key = (str(settings.storage_root), name)
    with _recorded_lock:
        if now - _recorded_uses.get(key, -math.inf) < style_use_record_every(settings):
            return
        _recorded_uses[key] = now
    with contextlib.suppress(UserError):
        jobs.store.record_style_use(name, now)


def _check_style_quota(settings: Any, store: JobStore, caller: Caller) -> None:
    """429 when the caller's key already owns ``max_styles_per_key`` styles, installed or in training.

    Only with API keys (like the per-key job quota). Counted from the owner records, which are written
    under the broker lock when a training is queued: checked there again (``Prepared.check``), a burst
    of submits cannot pass the limit.
    """
    if not caller.keyed:
        return
    mine = {name for name, owner in style_owners(store).items() if owner == caller.owner}
    if len(mine) < settings.max_styles_per_key:
        return
    training = {j.style for j in store.all() if j.kind == "style" and j.state in ACTIVE and j.owner == caller.owner}
    folder = settings.user_models_dir
    held = sum(1 for name in mine if name in training or (folder / f"{name}.onnx").is_file())
    if held >= settings.max_styles_per_key:
        raise TooManyStyles(
            f"this API key already has {held} styles (limit {settings.max_styles_per_key}); "
            "delete one (DELETE /v1/styles/{name}) to make room"
        )


def _installed(service: StyleService, name: str) -> tuple[str, str | None, str] | None:
    """(model, style inside it or None, "bundled"/"user") when ``name`` is an installed style or model."""
    registry = service.registry
    try:
        model, inner = registry.lookup(name)
        return model, inner, registry.locate(model)[1]
    except UnknownStyle:
        return None


def _url(request: Request, route: str, name: str) -> str:
    return request.scope.get("root_path", "") + request.app.url_path_for(route, name=name)


def _status(request: Request, service: StyleService, store: JobStore, name: str, caller: Caller) -> StyleStatus:
    _, jobs = _owned(store, caller, name)
    job = jobs[-1] if jobs else None
    job_id = job.id if job is not None and caller.owns(job.owner) else None  # job ids only to their owner
    training_preview = (
        _url(request, "style_training_preview", name)
        if job is not None and (store.job_dir(job.id) / PREVIEW).is_file()
        else None
    )
    installed = _installed(service, name)
    if installed is not None:
        model, _, source = installed
        steps = service.registry.info(model).summary.get("steps", 0)
        if job is not None and job.state == "succeeded":
            steps = job.frames_total
        steps = steps if isinstance(steps, int) else 0
        return StyleStatus(
            name=name,
            kind="bundled" if source == "bundled" else "user",
            state="ready",
            progress=1.0,
            step=steps,
            steps=steps,
            job_id=job_id,
            preview_url=_url(request, "style_preview", name),
            training_preview_url=training_preview,
        )
    if job is None or job.state == "succeeded":  # succeeded but not installed: its model was deleted by hand
        raise UnknownStyle(f"unknown style {name!r}; see GET /v1/styles")
    return StyleStatus(
        name=name,
        kind="user",
        state=job.state,  # type: ignore[arg-type]
        progress=round(job.progress, 4),
        step=job.frames_done,
        steps=job.frames_total or int(job.params.get("steps", 0)),
        error=job.error,
        job_id=job_id,
        preview_url=training_preview,
        training_preview_url=training_preview,
    )


def _check_name_free(service: StyleService, store: JobStore, name: str) -> None:
    installed = _installed(service, name)
    if installed is not None:
        model, inner, source = installed
        what = f"a {source} style" if inner is None or inner == name else f"a style inside the {source} model {model!r}"
        raise StyleNameTaken(f"the name {name!r} is taken by {what}; choose another")
    if any(j.state in ACTIVE for j in _jobs_of(store, name)):
        raise StyleNameTaken(f"a style named {name!r} is already being trained; choose another name or cancel it")


def _check_base(service: StyleService, base: str) -> str:
    """The model name of a usable base: installed (404) and multi-style fp32 (422)."""
    try:
        model, _ = service.registry.lookup(base)
    except UnknownStyle:
        raise UnknownStyle(f"unknown base model {base!r}; use a multi-style model from GET /v1/styles") from None
    info = service.registry.info(model)
    if len(info.style_names) < 2:
        raise body_error(
            "base",
            f"base {model!r} holds one style; a new style needs a multi-style base whose shared convolutions "
            "learned from several styles",
        )
    if info.precision != "fp32":
        raise body_error("base", f"base {model!r} is a {info.precision} model; use an fp32 multi-style model")
    return model


def _prepare_image(data: bytes, max_pixels: int) -> bytes:
    """The upload as a PNG of at most ``STORED_MAX_SIDE`` px: 415 not an image, 413 a bomb, 422 too small."""
    image = decode_image(data, max_pixels=max_pixels, max_size=STORED_MAX_SIDE)
    h, w = image.shape[:2]
    if min(h, w) < MIN_STYLE_SIDE:
        raise body_error(
            "image", f"the style image is {w}x{h} px; its shorter side must be at least {MIN_STYLE_SIDE} px"
        )
    return encode_image(np.ascontiguousarray(image), "png")


def _stop_training(jobs: JobQueue, store: JobStore, name: str, owner: str | None) -> None:
    """Cancel every queued or running training of ``name`` (``owner``'s) and wait until none runs (``StyleBusy``
    after a while)."""
    deadline = time.monotonic() + STOP_WAIT_S
    for job in _jobs_of(store, name, owner):
        if job.state in ACTIVE:
            with contextlib.suppress(JobNotReady):  # finished meanwhile
                jobs.cancel(job.id)
    while any(j.state == "running" for j in _jobs_of(store, name, owner)):
        if time.monotonic() > deadline:
            raise StyleBusy(f"the training of {name!r} is still stopping; retry in a few seconds")
        time.sleep(0.1)


# -- routes -------------------------------------------------------------------------------------------
@router.post(
    "",
    status_code=202,
    summary="Train a new style from an image",
    response_model=StyleAccepted,
    openapi_extra={**_CREATE_BODY, "parameters": [IDEMPOTENCY_PARAMETER]},
    responses={
        202: {"headers": {"Location": {"description": "/v1/styles/NAME", "schema": {"type": "string"}}}},
        **{code: _errors[code] for code in (404, 408, 409, 413, 415, 422, 429, 503, 507)},
    },
)
async def create_style(
    request: Request, jobs: JobsDep, caller: CallerDep, query: Annotated[StyleJobParams, Query()]
) -> JSONResponse:
    """Queue the training of a new style (``restyle train --add-style`` in a worker); 202 at once.

    Follow it at ``status_url``; once ``ready`` the name works as ``style`` in
    ``/v1/stylize`` and in video jobs, and appears in ``GET /v1/styles``.
    """
    settings = jobs.settings

    async def prepare(upload: Upload) -> Prepared:
        return await _prepare_style(upload, query)

    spec = SubmitSpec(
        kind="style",
        field_name="image",
        limit=settings.max_upload_bytes,
        raw_types=("image/", "application/octet-stream"),
        upload_name="upload.bin",
        prepare=prepare,
    )
    return await submit(request, jobs, caller, spec)


async def _prepare_style(upload: Upload, query: StyleJobParams) -> Prepared:
    request, store, directory = upload.request, upload.store, upload.directory
    settings = request.app.state.settings
    service = _service(request)
    params = with_form_fields(query, upload.saved.fields)
    name = params.name
    if not name:
        raise body_error("name", "a new style needs a name", "missing")
    if not valid_name(name):
        raise body_error("name", f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
    steps = params.steps or settings.style_steps
    if steps > settings.style_max_steps:
        raise body_error("steps", f"steps must be at most {settings.style_max_steps}", "less_than_equal")
    await run_in_threadpool(_check_style_quota, settings, store, upload.caller)
    await run_in_threadpool(_check_name_free, service, store, name)
    base = await run_in_threadpool(_check_base, service, params.base or settings.style_base)
    # Decoding takes an inference slot like any other decode (429 when the server is full), with the
    # request deadline: 415 not an image, 413 a bomb (from the header, before decoding), 422 too small.
    png = await request.app.state.admission.run(
        lambda: _prepare_image(upload.path.read_bytes(), settings.max_pixels),
        deadline=time.monotonic() + settings.request_timeout,
    )

    def store_image() -> None:
        (directory / "style.png").write_bytes(png)
        upload.path.unlink()

    await run_in_threadpool(store_image)
    owner = upload.caller.record_owner
    job = Job(
        id=upload.job_id,
        kind="style",
        state="queued",
        style=name,
        params={"base": base, "steps": steps},
        created_at=time.time(),
        input_name="style.png",
        owner=owner,
        frames_total=steps,
    )
    status_url = _url(request, "style_status", name)

    def last_check() -> None:  # under the broker lock, just before the enqueue
        _check_style_quota(settings, store, upload.caller)
        _check_name_free(service, store, name)

    body = StyleAccepted(
        name=name,
        job=JobResponse.of(job, settings.video_retention),
        status_url=status_url,
        preview_url=_url(request, "style_training_preview", name),
    )
    return Prepared(
        job,
        body.model_dump(),
        location(request, request.app.url_path_for("style_status", name=name)),
        # Under the broker lock, just before the enqueue: two requests racing for one name are settled here.
        check=last_check,
        on_commit=lambda: set_style_owner(store, name, owner, job.id),
    )


@router.get(
    "/{name}",
    name="style_status",
    summary="State, progress and preview of a style",
    response_model=StyleStatus,
    responses={404: _errors[404]},
)
def get_style(name: str, request: Request, jobs: JobsDep, caller: CallerDep) -> StyleStatus:
    return _status(request, _service(request), jobs.store, name, caller)


@router.get(
    "/{name}/training-preview",
    name="style_training_preview",
    summary="The latest training preview of a new style",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: _errors[404]},
)
def training_preview(name: str, request: Request, jobs: JobsDep, caller: CallerDep) -> FileResponse:
    """The newest sample grid of the style's training (the photo above, the style below); 404 before the first."""
    store = jobs.store
    _, found = _owned(store, caller, name)
    path = store.job_dir(found[-1].id) / PREVIEW if found else None
    if path is None or not path.is_file():
        if not found and _installed(_service(request), name) is None:
            raise UnknownStyle(f"unknown style {name!r}; see GET /v1/styles")
        raise PreviewNotReady(f"no training preview of {name!r} (yet); the first comes after a few training steps")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "/{name}/cancel",
    summary="Stop a style's training",
    response_model=StyleStatus,
    responses={
        403: {"model": ErrorResponse, "description": "A training no key owns (keys configured): admin keys only."},
        404: _errors[404],
        409: {"model": ErrorResponse, "description": "No training of it is in progress."},
    },
)
def cancel_style(name: str, request: Request, jobs: JobsDep, caller: CallerDep) -> StyleStatus:
    """Cancel the queued or running training of ``name`` (at once when queued, within a step when running)."""
    status = _status(request, _service(request), jobs.store, name, caller)  # 404 for unknown (or others') names
    owner, found = _owned(jobs.store, caller, name)
    active = [j for j in found if j.state in ACTIVE]
    if not active:
        raise JobNotReady(f"no training of {name!r} is queued or running (it is {status.state})")
    if not caller.owns(owner):
        raise Forbidden(f"the training of {name!r} belongs to no API key; only an admin key may cancel it")
    for job in active:
        jobs.cancel(job.id)
    return _status(request, _service(request), jobs.store, name, caller)


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a user style (stopping its training)",
    response_class=Response,
    responses={204: {"description": "Deleted."}, **{code: _errors[code] for code in (403, 404, 409, 503)}},
)
def delete_style(name: str, request: Request, jobs: JobsDep, caller: CallerDep) -> Response:
    """Stop the style's training if any, then remove its model files atomically; bundled styles are refused (403)."""
    service = _service(request)
    store = jobs.store
    owner, found = _owned(store, caller, name)  # another key's style: 404, and nothing changes
    installed = _installed(service, name)
    if installed is not None:
        model, inner, source = installed
        if source == "bundled":
            raise BundledStyle(f"{name!r} is a bundled style; only user styles can be deleted")
        if inner is not None and model != name:
            raise StyleNameTaken(f"{name!r} is one style of the model {model!r}; delete {model!r} to remove it")
    elif not found:
        raise UnknownStyle(f"unknown style {name!r}; see GET /v1/styles")
    if not caller.owns(owner):
        raise Forbidden(f"the style {name!r} belongs to no API key; only an admin key may delete it")
    # Cancel first, then remove: a training that installs its model meanwhile sees the cancel and undoes it.
    _stop_training(jobs, store, name, owner)
    remove_model(jobs.settings.user_models_dir, name)
    forget_style_owner(store, name)
    for job in _jobs_of(store, name, owner):
        shutil.rmtree(store.job_dir(job.id), ignore_errors=True)
        store.forget(job.id)
    return Response(status_code=204)
