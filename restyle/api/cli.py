"""``restyle serve [--host H] [--port P] [--models DIR] [--workers N]``: run the API under uvicorn.

Flags override the ``RESTYLE_*`` environment; they are written back into
the environment before uvicorn starts so that every worker process builds
the same ``Settings`` through the app factory.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from pydantic import ValidationError

from restyle.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the stylization HTTP API and web page",
        description="Serve the HTTP API (POST /v1/stylize, GET /v1/styles, /healthz, /readyz, /metrics) and the "
        "web page at /. Every setting can also be given as a RESTYLE_* environment variable (see docs/api.md).",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument("--models", help="directory of extra .onnx styles (RESTYLE_MODELS)")
    p.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    p.add_argument(
        "--job-workers",
        type=int,
        help="job worker processes started beside the API (RESTYLE_JOB_WORKERS, default 1); "
        "0 leaves jobs to `restyle worker` processes, here or on other machines",
    )
    p.add_argument("--broker", help="redis://HOST:PORT/DB shared by replicas and workers (default: embedded SQLite)")
    p.add_argument("--storage-root", help="job files (RESTYLE_STORAGE_ROOT); shared by every replica and worker")
    p.set_defaults(func=run)


def settings_from(overrides: dict[str, object]):  # -> Settings (imported lazily: keeps 'restyle --help' fast)
    """``Settings`` from the environment plus the flags given; a bad value is one line, not a traceback."""
    from restyle.api.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"invalid settings: {problems}") from None


def _settings_from(args: argparse.Namespace):  # -> Settings
    names = {"host": "host", "port": "port", "models": "models", "workers": "workers"}
    names |= {"job_workers": "job_workers", "broker": "broker_url", "storage_root": "storage_root"}
    return settings_from({field: getattr(args, flag, None) for flag, field in names.items()})


def _start_job_workers(settings) -> subprocess.Popen | None:
    """The embedded worker: `restyle worker` as a child process (a job that crashes or eats memory there
    cannot take the API down). Its environment is the API's settings, so both use the same queue."""
    from restyle.api.settings import child_environment

    if settings.job_workers == 0:
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "restyle", "worker", "--processes", str(settings.job_workers)],
        env=child_environment(settings),
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the API process dies, even by SIGKILL (Linux), so an
    embedded worker is never orphaned; SIGTERM makes it requeue its running job."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux: `restyle serve` still stops it on exit
        pass


def _stop_job_workers(proc: subprocess.Popen | None) -> None:
    """SIGTERM: the worker requeues its running jobs and exits; kill it if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from restyle.api.settings import export_to_environment

    settings = _settings_from(args)
    export_to_environment(settings)  # uvicorn's worker processes rebuild the same Settings from it
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    if settings.workers == 1:
        from restyle.api.app import create_app

        app = create_app(settings)  # fail here, with a clear message, on a bad models directory
        target: object = app
        factory = False
    else:
        target, factory = "restyle.api.app:create_app", True
    job_workers = _start_job_workers(settings)
    try:
        _serve(uvicorn, settings, target, factory)
    finally:
        _stop_job_workers(job_workers)
    return 0


def _serve(uvicorn, settings, target: object, factory: bool) -> None:
    uvicorn.run(
        target,  # type: ignore[arg-type]
        factory=factory,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if factory else None,
        log_level=settings.log_level,
        access_log=False,  # our middleware writes one structured line per request instead
        proxy_headers=False,
        server_header=False,
        limit_concurrency=settings.limit_concurrency,
    )
