"""The app factory: ``create_app(settings) -> FastAPI``.

A factory (not a module-level app) so that each test, benchmark or uvicorn
worker builds its own app with its own settings, metrics registry, pool and
sessions; under ``restyle serve --workers N`` uvicorn calls
``create_served_app`` with no arguments, which reads the settings from the
``RESTYLE_*`` environment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from restyle import __version__
from restyle.api import errors
from restyle.api.admission import Admission
from restyle.api.inference import make_inference
from restyle.api.jobs import JobCollector, JobQueue
from restyle.api.jobs import router as jobs_router
from restyle.api.metrics import Metrics
from restyle.api.middleware import BodyLimitMiddleware, ConcurrencyLimitMiddleware, RequestContextMiddleware
from restyle.api.oip import models as oip_models
from restyle.api.oip import public as oip_public
from restyle.api.routes import STATIC_DIR, api, ops, public
from restyle.api.styles import router as styles_router
from restyle.runtime.service import StyleService
from restyle.settings import Settings

DESCRIPTION = """Real-time neural style transfer.

`POST /v1/stylize` with a photo (multipart field `image`, or the raw bytes with an image content type)
returns the stylized image. `GET /v1/styles` lists the styles; `POST /v1/styles` trains a new one from
an image (a job: follow `GET /v1/styles/{name}`), `DELETE /v1/styles/{name}` removes it. The Open Inference
Protocol's health and model metadata routes (`/v2/health/live`, `/v2/health/ready`, `/v2/models/{name}`) serve
Kubernetes probes and KServe/Triton-style tooling. Errors are JSON
(`ErrorResponse`); every response carries `X-Request-ID`. When the server has API keys, send `Authorization: Bearer KEY`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Warm up in a background thread, so /healthz answers at once and /readyz flips when done."""
    service: StyleService = app.state.service
    metrics: Metrics = app.state.metrics
    if app.state.settings.warmup:

        def warm() -> None:
            service.warm_up()
            metrics.ready.set(1 if service.ready else 0)

        threading.Thread(target=warm, name="restyle-warmup", daemon=True).start()
    else:
        service.mark_ready()
        metrics.ready.set(1)
    try:
        yield
    finally:
        app.state.jobs.close()
        app.state.admission.close()
        await asyncio.sleep(0)


def _configure_logging(settings: Settings) -> None:
    """Make the access log visible in uvicorn worker processes, which start with no logging configured."""
    logger = logging.getLogger("restyle")
    if logger.level == logging.NOTSET:
        logger.setLevel(settings.log_level.upper())
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def create_app(
    settings: Settings | None = None, *, job_supervisor: Any = None, require_job_workers: bool = False
) -> FastAPI:
    """Build the app; a bad models directory or setting fails here, before the port opens.

    ``job_supervisor`` (``restyle serve``'s ``JobWorkerSupervisor``): ``/readyz`` is ready only while the
    worker it runs reports alive. ``require_job_workers``: only while some worker reports alive. Neither
    (an app built for tests, or API replicas with external workers): workers are counted, not required.
    """
    settings = settings or Settings()
    _configure_logging(settings)
    metrics = Metrics()
    app = FastAPI(
        title="restyle",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = StyleService(settings)
    app.state.admission = Admission(settings.effective_pool_size, settings.queue_size, metrics)
    app.state.inference = make_inference(
        app.state.service, app.state.admission, metrics, settings.batch_size, settings.batch_wait_ms
    )
    app.state.api_keys = sorted(key.encode() for key in settings.key_values())
    # Jobs are only enqueued here; `restyle worker` processes (or the one `restyle serve` starts) run them.
    app.state.jobs = JobQueue(settings)
    app.state.job_supervisor = job_supervisor
    app.state.require_job_workers = require_job_workers or job_supervisor is not None
    metrics.registry.register(JobCollector(app.state.jobs))

    errors.install(app)
    app.include_router(public)
    app.include_router(api)
    app.include_router(ops)
    app.include_router(jobs_router)
    app.include_router(styles_router)
    app.include_router(oip_public)
    app.include_router(oip_models)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Added innermost first: the request context wraps the concurrency limit, which wraps CORS, which wraps the
    # body limit.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_upload_bytes,
        path_limits={"/v1/jobs/video": settings.video_max_upload_bytes},
    )
    if settings.cors_origins:  # closed by default: no CORS headers at all unless origins are configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "X-Model",
                "X-Model-Version",
                "X-Inference-Time-Ms",
                "Server-Timing",
                "Retry-After",
            ],
            max_age=600,
        )
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        limit=settings.limit_concurrency,
        metrics=metrics,
        exempt=("/healthz", "/v2/health/live"),  # liveness probes: a busy server is not a dead one
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, log_requests=settings.access_log)
    return app


def create_served_app() -> FastAPI:
    """The app of each uvicorn process under ``restyle serve --workers N`` (settings from ``RESTYLE_*``).

    The job worker ``restyle serve`` supervises lives in another process, so ``/readyz`` here asks for a
    live worker heartbeat whenever the server runs its own workers (``job_workers`` > 0).
    """
    settings = Settings()
    return create_app(settings, require_job_workers=settings.job_workers > 0)
