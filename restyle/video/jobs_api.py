"""HTTP endpoints for video jobs, as an ``APIRouter`` the API app includes.

* ``POST /v1/jobs/video``: the video as the raw body (``Content-Type: video/*``
  or ``application/octet-stream``, streamed to disk with the size limit
  checked as bytes arrive) or as multipart field ``video``; options as query
  (or form) parameters ``style``, ``max_size``, ``stabilize``, ``start``,
  ``duration``. The file is probed before the job is accepted, so a corrupt
  upload is a 415 now rather than a failed job later. Answers 202 with the
  job and a ``Location`` header.
* ``GET /v1/jobs/{id}``: state (queued, running, succeeded, failed, expired) and progress.
* ``GET /v1/jobs/{id}/result``: the MP4 once succeeded; 409 before, 410 once expired.

Errors are ``UserError`` subclasses, rendered by the app's one error handler.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from restyle.errors import UserError
from restyle.video.io import probe
from restyle.video.jobs import JobNotReady, JobService, VideoTooLong

_CHUNK = 1 << 20
_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".3gp", ".ogv", ".flv", ".wmv"}


class UploadTooLarge(UserError):
    http_status = 413


class BadJobRequest(UserError):
    http_status = 422


class JobExpired(UserError):
    http_status = 410


def _number(value: Any, name: str, kind: type, low: float, high: float = math.inf) -> Any:
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise BadJobRequest(f"{name} must be a number, not {value!r}") from None
    if not (low <= number <= high) or (isinstance(number, float) and not math.isfinite(number)):
        raise BadJobRequest(f"{name} must be between {low:g} and {high:g}, not {value!r}")
    return number


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BadJobRequest(f"stabilize must be true or false, not {value!r}")


async def _save_stream(request: Request, target: Path, limit: int) -> int:
    size = 0
    with open(target, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(f"the video is larger than the limit of {limit} bytes")
            fh.write(chunk)
    return size


async def _save_upload(upload: Any, target: Path, limit: int) -> int:
    size = 0
    with open(target, "wb") as fh:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(f"the video is larger than the limit of {limit} bytes")
            fh.write(chunk)
    return size


def create_jobs_router(service: JobService) -> APIRouter:
    """The ``/v1/jobs`` routes bound to ``service`` (whose ``start()``/``stop()`` the app's lifespan calls)."""
    settings = service.settings
    router = APIRouter(prefix="/v1/jobs", tags=["video jobs"])

    @router.post("/video", status_code=202, summary="Submit a video to stylize")
    async def submit_video(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + 65536:
            raise UploadTooLarge(f"the video is larger than the limit of {settings.max_upload_bytes} bytes")
        params: dict[str, Any] = dict(request.query_params)
        job_id = service.new_id()
        directory = service.job_dir(job_id)
        directory.mkdir(parents=True)
        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=16)
                upload = form.get("video")
                if upload is None or isinstance(upload, str):
                    raise BadJobRequest("multipart upload needs the file in field 'video'")
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
                suffix = Path(upload.filename or "").suffix.lower()
                input_name = f"input{suffix if suffix in _SUFFIXES else '.bin'}"
                size = await _save_upload(upload, directory / input_name, settings.max_upload_bytes)
            elif content_type.startswith("video/") or content_type == "application/octet-stream":
                input_name = "input.bin"
                size = await _save_stream(request, directory / input_name, settings.max_upload_bytes)
            else:
                raise BadJobRequest("send the video as the body (Content-Type video/*) or as multipart field 'video'")
            if size == 0:
                raise BadJobRequest("the upload is empty")
            style = params.get("style") or None
            max_size = _number(params.get("max_size"), "max_size", int, 16, settings.max_size_limit)
            start = _number(params.get("start"), "start", float, 0.0) or 0.0
            duration = _number(params.get("duration"), "duration", float, 0.001)
            stabilize = _flag(params.get("stabilize"), True)
            choice = service.styles.resolve(style)  # 404 for an unknown style, before any decoding
            # Probing decodes a frame: it takes an inference slot like any other decode (429 when the
            # server is full), with the request deadline; 415 for a corrupt upload, 413 for huge frames.
            state = request.app.state
            info = await state.admission.run(
                lambda: probe(directory / input_name, max_pixels=settings.max_frame_pixels),
                deadline=time.monotonic() + state.settings.request_timeout,
            )
            length = max(0.0, info.duration - start) if info.duration else math.inf
            if duration is not None:
                length = min(length, duration)
            if length > settings.max_duration and math.isfinite(length):
                raise VideoTooLong(
                    f"the video is {length:.1f} s long; the limit is {settings.max_duration:g} s "
                    "(pass start and duration to stylize a part of it)"
                )
            # Always cap by the limit: the header's duration is a claim, not a fact (a file that says
            # 5 s may hold hours of frames); read_frames counts decoded time and frames against it.
            duration = settings.max_duration if duration is None else min(duration, settings.max_duration)
            job = service.submit(
                job_id,
                input_name,
                choice.label,
                {
                    "max_size": max_size or settings.max_size,
                    "start": start,
                    "duration": duration,
                    "stabilize": stabilize,
                },
            )
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return JSONResponse(
            job.public(settings.retention),
            status_code=202,
            headers={"Location": str(request.url_for("get_job", job_id=job.id))},
        )

    @router.get("/{job_id}", name="get_job", summary="State and progress of a job")
    def get_job(job_id: str) -> dict[str, Any]:
        job = service.get(job_id)
        body = job.public(settings.retention)
        if job.state == "succeeded":
            body["result"] = f"/v1/jobs/{job.id}/result"
        return body

    @router.get("/{job_id}/result", summary="The stylized MP4", response_class=FileResponse)
    def get_result(job_id: str) -> FileResponse:
        job = service.get(job_id)
        if job.state == "expired":
            raise JobExpired("this job's result was deleted after the retention period")
        if job.state == "failed":
            raise JobNotReady(f"the job failed: {job.error}")
        if job.state != "succeeded":
            raise JobNotReady(f"the job is {job.state} ({job.progress:.0%}); try again later")
        path = service.result_path(job.id)
        if not path.is_file():
            raise JobExpired("this job's result is no longer available")
        return FileResponse(path, media_type="video/mp4", filename=f"{job.id}.mp4")

    return router
