"""``/v1/jobs``: submit a video, follow it, download or cancel it; the API side of ``restyle.jobs``.

The API only validates, stores the upload under the storage root and
enqueues: it never runs a job (a worker process does), so a job that eats
all memory or crashes costs the API nothing. Every replica reads the same
records from the broker, so a job submitted to one replica can be polled and
downloaded on another (given a shared storage root).

* ``POST /v1/jobs/video``: the video as the raw body (``video/*`` or
  ``application/octet-stream``) or multipart field ``video``; options
  (``style``, ``max_size``, ``stabilize``, ``start``, ``duration``) as query
  or form fields. The file is probed first, so a corrupt upload is a 415 now
  rather than a failed job later. 202 with the job and a ``Location`` header.
* ``GET /v1/jobs/{id}``: state, progress, error, timestamps, attempts.
* ``GET /v1/jobs/{id}/result``: the MP4 once succeeded; 409 before, 410 once expired.
* ``POST /v1/jobs/{id}/cancel``: stop a queued or running job.

Submission (quotas reserved atomically before the body is read, the upload,
the commit, ``Idempotency-Key``) is ``restyle.api.submission``, shared with
``POST /v1/styles``: 429 when the queue or the caller's share of it is full,
507 when the storage root is, 503 when the broker does not answer in time or
(``no_worker``) when workers are alive but none takes the job's kind.

With API keys, a job belongs to the key that submitted it: other keys get
404 for it (an admin key, ``RESTYLE_ADMIN_KEYS``, sees every job).

New styles (``POST /v1/styles``, ``styles.py``) are jobs of kind ``style`` on
the same queue, under the same quotas, and readable here too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from restyle.api.deps import Caller, CallerDep, bearer_token, key_identity, require_api_key
from restyle.api.errors import StorageFull
from restyle.api.schemas import MODEL_VERSION_HEADER
from restyle.api.submission import (
    IDEMPOTENCY_PARAMETER,
    Prepared,
    QueueFull,
    SubmitSpec,
    Upload,
    location,
    style_owner,
    submit,
)
from restyle.api.uploads import with_form_fields
from restyle.errors import UnknownStyle, UserError
from restyle.jobs.kinds import KINDS, accepts, workers_for
from restyle.jobs.store import (
    ACTIVE,
    BROKER_ERRORS,
    FINISHED,
    RESERVED,
    STATES,
    Job,
    JobNotFound,
    JobStore,
    QueueUnavailable,
    describe_broker,
    storage_problem,
)
from restyle.settings import Settings

__all__ = ["JobQueue", "JobResponse", "QueueFull", "StorageFull", "get_jobs", "owner_of", "router", "visible_job"]

VIDEO_SUFFIXES = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".3gp",
    ".ogv",
    ".flv",
    ".wmv",
}
MAX_START_S = 7 * 24 * 3600.0  # the latest `start` a video job accepts (a week of video; beyond: 422)
MAX_WAIT_S = 30.0  # longest long poll of GET /v1/jobs/{id}?wait=S (under common proxies' 60 s idle timeouts)
WAIT_CHECK_S = 0.1  # how often a long poll re-reads the job's record
log = logging.getLogger("restyle.api")
BROKER_CALL_MARGIN_S = 0.5  # a broker call gives up this long after its request's broker_timeout
DURATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class JobNotReady(UserError):
    """The result of a job that has not succeeded."""

    http_status = 409


class JobExpired(UserError):
    http_status = 410


class NoResultFile(UserError):
    """``/result`` of a job whose result is not a file (a new style is used by name)."""

    http_status = 404


class VideoTooLong(UserError):
    http_status = 413


# -- request and response models ----------------------------------------------------------------------
class VideoJobParams(BaseModel):
    """Options of a video job (query parameters, or form fields beside a multipart ``video``)."""

    model_config = ConfigDict(extra="ignore")

    style: str | None = Field(None, description="MODEL, MODEL:STYLE or a style name; default: the server's.")
    max_size: int | None = Field(
        None, ge=16, description="Longest side of the output (default RESTYLE_VIDEO_MAX_SIZE)."
    )
    stabilize: bool = Field(True, description="Temporal stabilization (less flicker).")
    start: float = Field(0.0, ge=0, le=MAX_START_S, allow_inf_nan=False, description="Seconds to skip.")
    duration: float | None = Field(
        None, gt=0, le=MAX_START_S, allow_inf_nan=False, description="Seconds to stylize (at most the server's limit)."
    )


class JobResponse(BaseModel):
    id: str
    kind: str = Field(description="video (POST /v1/jobs/video) or style (POST /v1/styles).")
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
    style: str = Field(description="The style a video job applies, or the new style a style job trains.")
    progress: float = Field(description="0..1 (frames done / frames expected; for a style job, steps).")
    frames_done: int = Field(description="Frames written (video) or training steps done (style).")
    frames_total: int = Field(description="Frames expected (video) or training steps planned (style).")
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None = Field(description="When a finished job's files are deleted.")
    error: str | None
    attempts: int = Field(description="Runs started (a worker that died costs one).")
    params: dict[str, Any]
    result: str | None = Field(
        None, description="Once succeeded: where to download the MP4 (video), or the new style's status (style)."
    )

    @classmethod
    def of(cls, job: Job, retention: float) -> JobResponse:
        return cls(
            id=job.id,
            kind=job.kind,
            state=job.state,  # type: ignore[arg-type]
            style=job.style,
            progress=round(job.progress, 4),
            frames_done=job.frames_done,
            frames_total=job.frames_total,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            expires_at=job.finished_at + retention if job.finished_at and job.state in FINISHED else None,
            error=job.error,
            attempts=job.attempts,
            params=job.params,
            result=None
            if job.state != "succeeded"
            else f"/v1/styles/{job.style}"
            if job.kind == "style"
            else f"/v1/jobs/{job.id}/result",
        )


# -- the API side of the queue ---------------------------------------------------------------------------
class QueueHealth(NamedTuple):
    """What ``/readyz`` learns of the queue: ``jobs`` (broker, workers, pending), the names of the live worker
    services (the supervised one must be among them), and per kind ``{workers, pending, accepting}`` (None
    while the broker is unavailable)."""

    jobs: dict[str, Any]
    alive: set[str]
    kinds: dict[str, dict[str, Any]] | None


class JobQueue:
    """The broker connection of one API process: submit with quotas, read, cancel, health, metrics.

    The Huey instance (and for SQLite the queue file) is created on first
    use, so an app that never sees a job touches no storage.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._store: JobStore | None = None
        self._store_lock = threading.Lock()

    @property
    def store(self) -> JobStore:
        """The broker connection, opened on first use with ``broker_timeout`` (plus ``BROKER_CALL_MARGIN_S``) as
        its longest wait (SQLite's busy timeout, Redis's socket timeout, at most 5 s): a call its request stopped
        waiting for (a 503 after ``broker_timeout``) gives up a moment later, instead of holding the connection
        (and SQLite's per-process lock, which every other broker call of this process queues behind) for the
        workers' 30 s. The margin lets the request's own timeout answer first, with its clear message."""
        if self._store is None:
            from restyle.jobs.store import make_huey

            with self._store_lock:
                if self._store is None:
                    try:
                        timeout = self.settings.broker_timeout + BROKER_CALL_MARGIN_S
                        huey = make_huey(self.settings, timeout=timeout)
                        self._store = JobStore(huey, self.settings)
                    except OSError as exc:
                        raise QueueUnavailable(
                            f"cannot open {describe_broker(self.settings)}: {exc.strerror or exc}"
                        ) from None
                    except BROKER_ERRORS as exc:  # the schema could not be created (a locked or full file)
                        raise QueueUnavailable(
                            f"cannot open {describe_broker(self.settings)}: {type(exc).__name__}"
                        ) from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            close = getattr(self._store.storage, "close", None)
            if close is not None:
                close()
            self._store = None

    def check_storage(self, incoming: int) -> None:
        """``StorageFull`` (507) when ``incoming`` more bytes would pass ``max_storage_bytes`` (job files plus the
        installed user styles made through the API: ``JobStore.bytes_used``), or leave the storage
        root's file system with less than ``min_free_bytes`` free. Called before the body is read (``incoming``
        from ``Content-Length``) and again after. The message names amounts, never the path."""
        if problem := storage_problem(self.settings, incoming):
            raise StorageFull(f"{problem}; retry later")
        used = self.store.bytes_used()
        if used + incoming > self.settings.max_storage_bytes:
            raise StorageFull(
                f"job storage is full ({used} of {self.settings.max_storage_bytes} bytes used); retry later"
            )

    def cancel(self, job_id: str) -> Job:
        """Stop a queued job at once (``cancelled``, files deleted) or ask its worker to stop a running one."""
        store = self.store
        job = store.require(job_id)
        if job.state not in ("queued", "running"):
            raise JobNotReady(f"the job is already {job.state}")
        store.request_cancel(job_id)  # a worker that claims or runs it sees this
        if job.state == "queued":
            job.state, job.finished_at, job.error = "cancelled", time.time(), "cancelled on request"
            store.put(job)
            shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
        return job

    def health(self) -> QueueHealth:
        """``{broker, workers, pending}`` and, per job kind, ``{workers, pending, accepting}`` for ``/readyz``,
        and the names of the worker services alive.

        Shown on the open ``/readyz``: no error text, since the broker's own message names its file or host
        (the reason is logged at debug level instead), and no worker names (they are ``host:pid``).
        """
        try:
            store = self.store
            pending = store.ping()
            by_kind = store.pending_by_kind()
            workers = store.workers()
        except UserError as exc:
            log.debug("readiness: %s", exc)
            return QueueHealth({"broker": "unavailable", "workers": 0, "pending": None}, set(), None)
        count = sum(int(w.get("processes", 1)) for w in workers.values())
        kinds = {
            kind: {"workers": workers_for(workers, kind), "pending": by_kind[kind], "accepting": accepts(workers, kind)}
            for kind in KINDS
        }
        return QueueHealth({"broker": "ok", "workers": count, "pending": pending}, set(workers), kinds)


def owner_of(request: Request) -> str:
    """The identity of the request's bearer key (``deps.key_identity``: a hash, never the key), or "anonymous"."""
    token = bearer_token(request)
    return key_identity(token) if token else "anonymous"


def visible_job(store: JobStore, job_id: str, caller: Caller) -> Job:
    """The job, if the caller may see it; another key's job (or a reservation) is "no such job", as a missing one."""
    job = store.require(job_id)
    if job.state == RESERVED or not caller.sees(job.owner):
        raise JobNotFound(f"no such job: {job_id}")
    return job


def _validate_params(query: VideoJobParams, fields: dict[str, str], settings: Settings) -> VideoJobParams:
    params = with_form_fields(query, fields)
    if params.max_size is not None and params.max_size > settings.video_max_size_limit:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "max_size"),
                    "msg": f"max_size must be at most {settings.video_max_size_limit}",
                }
            ]
        )
    return params


def get_jobs(request: Request) -> JobQueue:
    return request.app.state.jobs


JobsDep = Annotated[JobQueue, Depends(get_jobs)]
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(require_api_key)])


@router.post(
    "/video",
    status_code=202,
    summary="Submit a video to stylize",
    response_model=JobResponse,
    openapi_extra={"parameters": [IDEMPOTENCY_PARAMETER]},
    responses={
        202: {"headers": {"Location": {"description": "/v1/jobs/ID", "schema": {"type": "string"}}}},
        404: {"description": "Unknown style (or another API key's user style)."},
        408: {"description": "The upload did not arrive within RESTYLE_BODY_TIMEOUT."},
        409: {"description": "A request with the same Idempotency-Key is still being processed."},
        413: {"description": "Upload, frames or duration over the limit."},
        415: {"description": "Not a readable video, or a wrong content type."},
        422: {"description": "Invalid parameters (start or duration out of range...) or Idempotency-Key."},
        429: {"description": "Queue full, or this key has too many unfinished jobs."},
        503: {
            "description": "The job queue (broker) is unavailable or did not answer within RESTYLE_BROKER_TIMEOUT; "
            "or (no_worker) job workers are alive but none takes video jobs."
        },
        507: {"description": "Job storage is full."},
    },
)
async def submit_video(
    request: Request, jobs: JobsDep, caller: CallerDep, query: Annotated[VideoJobParams, Query()]
) -> JSONResponse:
    """Queue a video job (``restyle.api.submission``: quotas reserved first, ``Idempotency-Key`` honoured)."""
    settings = jobs.settings

    async def prepare(upload: Upload) -> Prepared:
        return await _prepare_video(upload, query, settings)

    spec = SubmitSpec(
        kind="video",
        field_name="video",
        limit=settings.video_max_upload_bytes,
        raw_types=("video/", "application/octet-stream"),
        upload_name="input.bin",
        prepare=prepare,
    )
    return await submit(request, jobs, caller, spec)


def _resolve_visible(request: Request, store: JobStore, caller: Caller, style: str | None) -> Any:
    """The style choice, 404 as for an unknown style when it is a user style of another key."""
    choice = request.app.state.service.resolve(style)
    owner = style_owner(store, choice.model)
    if not caller.sees(owner):
        raise UnknownStyle(f"unknown style {style!r}; see GET /v1/styles")
    return choice


async def _prepare_video(upload: Upload, query: VideoJobParams, settings: Settings) -> Prepared:
    from restyle.video.io import probe

    request, directory = upload.request, upload.directory
    suffix = Path(upload.saved.filename or "").suffix.lower()
    input_name = f"input{suffix}" if suffix in VIDEO_SUFFIXES else "input.bin"
    if input_name != upload.path.name:
        await run_in_threadpool(upload.path.rename, directory / input_name)
    params = _validate_params(query, upload.saved.fields, settings)
    # 404 for an unknown style (or another key's), before decoding
    choice = await run_in_threadpool(_resolve_visible, request, upload.store, upload.caller, params.style)
    # Probing decodes a frame: it takes an inference slot like any other decode (429 when the
    # server is full), with the request deadline; 415 for a corrupt upload, 413 for huge frames.
    state = request.app.state
    info = await state.admission.run(
        lambda: probe(directory / input_name, max_pixels=settings.video_max_frame_pixels),
        deadline=time.monotonic() + state.settings.request_timeout,
    )
    length = max(0.0, info.duration - params.start) if info.duration else math.inf
    if params.duration is not None:
        length = min(length, params.duration)
    if length > settings.video_max_duration and math.isfinite(length):
        raise VideoTooLong(
            f"the video is {length:.1f} s long; the limit is {settings.video_max_duration:g} s "
            "(pass start and duration to stylize a part of it)"
        )
    # Always cap by the limit: the header's duration is a claim, not a fact (a file that says
    # 5 s may hold hours of frames); read_frames counts decoded time and frames against it.
    duration = (
        settings.video_max_duration if params.duration is None else min(params.duration, settings.video_max_duration)
    )
    job = Job(
        id=upload.job_id,
        kind="video",
        state="queued",
        style=choice.label,
        params={
            "max_size": params.max_size or settings.video_max_size,
            "start": params.start,
            "duration": duration,
            "stabilize": params.stabilize,
        },
        created_at=time.time(),
        input_name=input_name,
        owner=upload.caller.record_owner,
    )
    body = JobResponse.of(job, settings.video_retention).model_dump()
    return Prepared(job, body, location(request, request.app.url_path_for("get_job", job_id=job.id)))


@router.get("/{job_id}", name="get_job", summary="State and progress of a job", response_model=JobResponse)
async def get_job(
    job_id: str,
    jobs: JobsDep,
    caller: CallerDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Long poll: hold the answer up to this many seconds until the job is no longer queued or "
            "running, so a client learns of the end at once without polling fast. 0 (default): answer now.",
        ),
    ] = 0.0,
) -> JobResponse:
    """The job's record; with ``wait``, the first one that is finished (or the last when the wait runs out).

    The server checks the record every ``WAIT_CHECK_S`` (a key-value read,
    ~0.1 ms), where clients polling every 50 ms cost the API ~6 ms of CPU a
    request (measured with the test client): on a 2-core machine that slowed
    the job they were watching by ~9 % (``bench/video_jobs.py``).
    """
    job = await run_in_threadpool(lambda: visible_job(jobs.store, job_id, caller))
    deadline = time.monotonic() + wait
    while job.state in ACTIVE and time.monotonic() < deadline:
        await asyncio.sleep(min(WAIT_CHECK_S, max(0.0, deadline - time.monotonic())))
        job = await run_in_threadpool(lambda: visible_job(jobs.store, job_id, caller))
    return JobResponse.of(job, jobs.settings.video_retention)


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job", response_model=JobResponse)
def cancel_job(job_id: str, jobs: JobsDep, caller: CallerDep) -> JobResponse:
    visible_job(jobs.store, job_id, caller)  # another key's job: 404, and nothing changes
    return JobResponse.of(jobs.cancel(job_id), jobs.settings.video_retention)


@router.get(
    "/{job_id}/result",
    summary="The stylized MP4",
    response_class=FileResponse,
    responses={
        200: {
            "headers": {
                "X-Model": {"description": "The style the job applied.", "schema": {"type": "string"}},
                MODEL_VERSION_HEADER: {
                    "description": "The version (short SHA-256) of the model file the job ran with.",
                    "schema": {"type": "string"},
                },
            }
        }
    },
)
def get_result(job_id: str, jobs: JobsDep, caller: CallerDep) -> FileResponse:
    store = jobs.store
    job = visible_job(store, job_id, caller)
    if job.state == "expired":
        raise JobExpired("this job's result was deleted after the retention period")
    if job.state in ("failed", "cancelled"):
        raise JobNotReady(f"the job {job.state}: {job.error}")
    if job.state != "succeeded":
        raise JobNotReady(f"the job is {job.state} ({job.progress:.0%}); try again later")
    if job.kind != "video":
        raise NoResultFile(f"a {job.kind} job has no file to download; its result is the style {job.style!r}")
    path = store.result_path(job.id)
    if not path.is_file():
        raise JobExpired(
            "this job's result is not in this server's storage root (expired, or the replicas do not share it)"
        )
    # Which model made it: the version its worker recorded when it loaded the model (a job run before versions
    # were recorded has none).
    headers = {"X-Model": job.style}
    if version := job.params.get("model_version"):
        headers[MODEL_VERSION_HEADER] = str(version)
    return FileResponse(path, media_type="video/mp4", filename=f"{job.id}.mp4", headers=headers)


class JobCollector:
    """Prometheus metrics read from the shared records at scrape time, so every replica shows the same numbers."""

    def __init__(self, queue: JobQueue):
        self.queue = queue

    def describe(self) -> list[Any]:  # without it the registry would call collect() (the broker) at start-up
        return [
            GaugeMetricFamily("restyle_job_broker_up", ""),
            GaugeMetricFamily("restyle_jobs", "", labels=["state"]),
            GaugeMetricFamily("restyle_job_queue_depth", ""),
            GaugeMetricFamily("restyle_job_workers", ""),
            GaugeMetricFamily("restyle_job_kind_workers", "", labels=["kind"]),
            HistogramMetricFamily("restyle_job_duration_seconds", "", labels=["kind"]),
        ]

    def collect(self) -> Any:
        up = GaugeMetricFamily("restyle_job_broker_up", "1 when the job queue's broker answers.")
        try:
            jobs = self.queue.store.all()
            workers = self.queue.store.workers()
        except QueueUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_state = GaugeMetricFamily("restyle_jobs", "Job records by state (all replicas).", labels=["state"])
        for state in STATES:
            by_state.add_metric([state], sum(1 for j in jobs if j.state == state))
        yield by_state
        depth = GaugeMetricFamily("restyle_job_queue_depth", "Jobs waiting for a worker.")
        depth.add_metric([], sum(1 for j in jobs if j.state == "queued"))
        yield depth
        ttl = self.queue.settings.worker_ttl
        alive = GaugeMetricFamily(
            "restyle_job_workers", f"Worker processes whose service reported alive in the last {ttl:g} s."
        )
        alive.add_metric([], sum(int(w.get("processes", 1)) for w in workers.values()))
        yield alive
        by_kind = GaugeMetricFamily(
            "restyle_job_kind_workers", "Live worker processes that take jobs of each kind.", labels=["kind"]
        )
        for kind in KINDS:
            by_kind.add_metric([kind], workers_for(workers, kind))
        yield by_kind
        hist = HistogramMetricFamily(
            "restyle_job_duration_seconds", "Run time of succeeded jobs still on record.", labels=["kind"]
        )
        for kind in sorted({j.kind for j in jobs}):
            times = [
                j.finished_at - j.started_at
                for j in jobs
                if j.kind == kind and j.state == "succeeded" and j.started_at and j.finished_at
            ]
            buckets = [(str(b), sum(1 for t in times if t <= b)) for b in DURATION_BUCKETS]
            buckets.append(("+Inf", len(times)))
            hist.add_metric([kind], buckets, sum(times))
        yield hist
