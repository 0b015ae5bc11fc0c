"""``restyle serve [--host H] [--port P] [--models DIR] [--workers N]``: run the API under uvicorn.

Flags override the ``RESTYLE_*`` environment; they are written back into
the environment before uvicorn starts so that every worker process builds
the same ``Settings`` through the app factory.

Unless ``--job-workers 0``, the server runs one ``restyle worker`` beside it
and supervises it (``JobWorkerSupervisor``): restarted with a backoff when it
dies, stopped (its jobs requeued) when the server stops, and ``/readyz`` is
503 while it is not running.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

log = logging.getLogger("restyle.api")


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


def _settings_from(args: argparse.Namespace):  # -> Settings (imported lazily: keeps 'restyle --help' fast)
    from restyle.settings import settings_from

    names = {"host": "host", "port": "port", "models": "models", "workers": "workers"}
    names |= {"job_workers": "job_workers", "broker": "broker_url", "storage_root": "storage_root"}
    return settings_from({field: getattr(args, flag, None) for flag, field in names.items()})


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from restyle.settings import export_to_environment

    settings = _settings_from(args)
    export_to_environment(settings)  # uvicorn's worker processes rebuild the same Settings from it
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    supervisor = JobWorkerSupervisor(settings) if settings.job_workers else None
    if settings.workers == 1:
        from restyle.api.app import create_app

        # Fail here, with a clear message, on a bad models directory; /readyz follows the supervised worker.
        app = create_app(settings, job_supervisor=supervisor)
        target: object = app
        factory = False
    else:  # each uvicorn process builds its own app; /readyz there wants a live worker heartbeat
        import restyle.api.app  # noqa: F401  (a missing extra fails here, in one line, not in every process)

        target, factory = "restyle.api.app:create_served_app", True
    if supervisor is not None:
        supervisor.start()
    try:
        _serve(uvicorn, settings, target, factory)
    finally:
        if supervisor is not None:
            supervisor.stop()
    return 0


class JobWorkerSupervisor:
    """The embedded job worker of ``restyle serve``: ``restyle worker`` as a child process, kept running.

    A child process, so that a job that crashes or eats memory cannot take the API down; its environment
    is the API's settings, so both use the same queue. When it dies (``kill -9``, the OOM killer, a crash)
    it is started again after a backoff (1 s, doubling up to 30 s while it keeps dying; back to 1 s once
    one ran for a minute). ``worker_name`` is the name its heartbeats carry (``host:pid``) while it runs,
    else None: ``/readyz`` is not ready until that very worker says it is alive.

    The worker runs in its own session (a Ctrl-C in the terminal reaches the server alone, which stops the
    worker with SIGTERM: running jobs are requeued) and gets SIGTERM from the kernel when this server dies,
    even by SIGKILL (``restyle worker --parent-pid``).
    """

    FIRST_BACKOFF_S = 1.0
    MAX_BACKOFF_S = 30.0
    HEALTHY_AFTER_S = 60.0  # a worker that ran this long resets the backoff
    STOP_TIMEOUT_S = 30.0

    def __init__(self, settings, command: list[str] | None = None):
        self.settings = settings
        self.command = command or [
            sys.executable,
            "-m",
            "restyle",
            "worker",
            "--processes",
            str(settings.job_workers),
            "--parent-pid",
            str(os.getpid()),
        ]
        self.restarts = 0
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None while it is down or being restarted)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def worker_name(self) -> str | None:
        pid = self.pid
        return None if pid is None else f"{self._host}:{pid}"

    def start(self) -> None:
        # One thread starts every worker process and waits for it: the kernel's parent-death signal follows
        # the *thread* that forked a child, so this thread lives until ``stop``.
        self._thread = threading.Thread(target=self._supervise, name="job-worker-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        from restyle.settings import child_environment

        return subprocess.Popen(self.command, env=child_environment(self.settings), start_new_session=True)

    def _supervise(self) -> None:
        backoff = self.FIRST_BACKOFF_S
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._proc = proc = self._spawn()
                except OSError as exc:
                    log.error("cannot start the job worker: %s", exc)
                    proc = None
            started = time.monotonic()
            code = proc.wait() if proc is not None else None
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= self.HEALTHY_AFTER_S:
                backoff = self.FIRST_BACKOFF_S
            how = f"was killed by {_signal_name(-code)}" if code is not None and code < 0 else f"exited ({code})"
            log.warning("the job worker %s; restarting it in %.0f s", how, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(self.MAX_BACKOFF_S, backoff * 2)
            self.restarts += 1

    def stop(self) -> None:
        """SIGTERM: the worker requeues its running jobs and exits; killed if it takes over 30 s."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        if self._thread is not None:
            self._thread.join(self.STOP_TIMEOUT_S)
            if self._thread.is_alive() and proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                self._thread.join(5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _serve(uvicorn, settings, target: object, factory: bool) -> None:
    from restyle.api.http_protocol import HTTP_PROTOCOL

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
        # Every answer in JSON: a malformed request gets the API's 400 (uvicorn's is plain text), and the
        # concurrency limit is the app's own middleware (RESTYLE_LIMIT_CONCURRENCY), not uvicorn's plain 503.
        http=HTTP_PROTOCOL,
    )
