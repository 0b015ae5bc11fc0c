"""Video jobs: an embedded SQLite store, a background worker and retention.

Why SQLite: a video job outlives a request and may outlive the process. The
database (one file beside the job folders, WAL mode) lets a restarted server
still answer for finished jobs, and on start-up every job that was
``running`` when the previous process died is marked ``failed`` (its
partial output was never renamed into place, see ``restyle.atomic``) instead
of hanging in ``running`` forever. Jobs still ``queued`` are simply run.

Layout: ``JOBS_DIR/jobs.sqlite3`` and ``JOBS_DIR/<id>/{input.*,result.mp4}``.
The input is deleted when a job ends; results (and then rows) are deleted
after the retention period.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from restyle.errors import UserError, scrub
from restyle.runtime import StylizeOptions, Stylizer
from restyle.video.io import MAX_FRAME_PIXELS
from restyle.video.pipeline import Cancelled

log = logging.getLogger(__name__)

STATES = ("queued", "running", "succeeded", "failed", "expired")
FINISHED = ("succeeded", "failed")
ID_LENGTH = 32  # uuid4 hex


def runner_id() -> str:
    """This process, as recorded on the jobs it claims (computed per call: workers may be forked)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _runner_alive(runner: str | None) -> bool:
    """Whether the process that claimed a job still runs (only knowable for this host's processes)."""
    host, _, pid = (runner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobSettings(BaseSettings):
    """Video-job settings, read from ``RESTYLE_VIDEO_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="RESTYLE_VIDEO_", extra="ignore")

    jobs_dir: Path = Field(Path.home() / ".cache" / "restyle" / "video-jobs", description="Database and job files.")
    max_upload_bytes: int = Field(200_000_000, ge=1, description="Larger uploads get 413.")
    max_duration: float = Field(120.0, gt=0, description="Longest video (seconds, after --start/--duration) accepted.")
    max_frame_pixels: int = Field(
        MAX_FRAME_PIXELS, gt=0, description="Largest frame (width x height) accepted; larger videos get 413."
    )
    max_size: int = Field(720, ge=16, description="Default longest side of the output.")
    max_size_limit: int = Field(1920, ge=16, description="Largest max_size a job may ask for.")
    retention: float = Field(24 * 3600.0, gt=0, description="Seconds a finished job's result is kept.")
    workers: int = Field(1, ge=1, le=16, description="Jobs run at the same time (each uses every core).")
    cleanup_interval: float = Field(60.0, gt=0, description="Seconds between retention sweeps.")


class JobNotFound(UserError):
    http_status = 404


class JobNotReady(UserError):
    """The result of a job that has not succeeded (409) or has expired (410)."""

    http_status = 409


class VideoTooLong(UserError):
    http_status = 413


@dataclass
class Job:
    id: str
    state: str
    style: str
    params: dict[str, Any]
    created_at: float
    input_name: str
    frames_done: int = 0
    frames_total: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    runner: str | None = None  # "host:pid" of the process running it

    @property
    def progress(self) -> float:
        if self.state == "succeeded":
            return 1.0
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def public(self, retention: float) -> dict[str, Any]:
        """What ``GET /v1/jobs/{id}`` shows (no file paths)."""
        out = asdict(self)
        out.pop("input_name")
        out.pop("runner")
        out["progress"] = round(self.progress, 4)
        out["expires_at"] = self.finished_at + retention if self.finished_at and self.state in FINISHED else None
        return out


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    style TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    input_name TEXT NOT NULL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    runner TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created_at);
"""
_COLUMNS = [
    "id",
    "state",
    "style",
    "params",
    "created_at",
    "input_name",
    "frames_done",
    "frames_total",
    "started_at",
    "finished_at",
    "error",
    "runner",
]


class JobStore:
    """Thread-safe access to the jobs table: one connection, one lock (writes are tiny and rare)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _row(row: tuple) -> Job:
        data = dict(zip(_COLUMNS, row))
        data["params"] = json.loads(data["params"])
        return Job(**data)

    def add(self, job: Job) -> None:
        values = asdict(job)
        values["params"] = json.dumps(job.params)
        with self._lock:
            self._db.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                [values[c] for c in _COLUMNS],
            )

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._row(row) if row else None

    def update(self, job_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields {unknown}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id])

    def claim_next(self) -> Job | None:
        """Atomically move the oldest queued job to running."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1"
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                now = time.time()
                self._db.execute(
                    "UPDATE jobs SET state = 'running', started_at = ?, runner = ? WHERE id = ?",
                    (now, runner_id(), row[0]),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        job = self._row(row)
        job.state, job.started_at = "running", now
        return job

    def fail_interrupted(self, message: str) -> list[str]:
        """Mark ``running`` jobs whose process is gone as failed (called at start-up).

        With several uvicorn workers sharing the database, a job another live
        worker on this host is running must be left alone; a job of a dead
        process (or of an unknown one, or another host's) is failed.
        """
        now = time.time()
        with self._lock:
            rows = self._db.execute("SELECT id, runner FROM jobs WHERE state = 'running'").fetchall()
            ids = [job_id for job_id, runner in rows if not _runner_alive(runner)]
            for job_id in ids:
                self._db.execute(
                    "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE id = ? AND state = 'running'",
                    (message, now, job_id),
                )
        return ids

    def finished_before(self, cutoff: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at < ?", (cutoff,)
            ).fetchall()
        return [r[0] for r in rows]

    def delete_expired_before(self, cutoff: float) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM jobs WHERE state = 'expired' AND finished_at < ?", (cutoff,))
        return cur.rowcount

    def count(self, state: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]


class StyleSource(Protocol):
    """What the job service needs from the API's style catalogue (``restyle.api.service.StyleService``)."""

    def resolve(self, style: str | None) -> Any:  # -> Choice with .model, .style, .multi, .label
        ...

    def stylizer(self, model: str) -> Stylizer: ...


class JobService:
    """The store plus worker threads; ``start()`` at app start-up, ``stop()`` at shutdown."""

    def __init__(self, settings: JobSettings, styles: StyleSource):
        self.settings = settings
        self.styles = styles
        self.dir = Path(settings.jobs_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.dir / "jobs.sqlite3")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- files -----------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if len(job_id) != ID_LENGTH or not all(c in "0123456789abcdef" for c in job_id):
            raise JobNotFound("no such job")  # never let a request-supplied id near a path
        return self.dir / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.mp4"

    def new_id(self) -> str:
        return uuid.uuid4().hex

    # -- API ---------------------------------------------------------------------------------
    def submit(self, job_id: str, input_name: str, style: str, params: dict[str, Any]) -> Job:
        job = Job(id=job_id, state="queued", style=style, params=params, created_at=time.time(), input_name=input_name)
        self.store.add(job)
        self._wake.set()
        return job

    def get(self, job_id: str) -> Job:
        self.job_dir(job_id)
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"no such job: {job_id}")
        return job

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        failed = self.store.fail_interrupted("the server stopped while this job was running; submit it again")
        for job_id in failed:
            log.warning("video job %s was running when the server stopped; marked failed", job_id)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)  # the input and a partial temporary output
        self.cleanup()
        self._stop.clear()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"video-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel running jobs (they end ``failed``) and wait for the workers."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        self.stop()
        self.store.close()

    # -- the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        next_cleanup = time.monotonic() + self.settings.cleanup_interval
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(timeout=min(5.0, self.settings.cleanup_interval))
                self._wake.clear()
            else:
                self._run(job)
            if time.monotonic() >= next_cleanup:
                self.cleanup()
                next_cleanup = time.monotonic() + self.settings.cleanup_interval

    def _run(self, job: Job) -> None:
        from restyle.video.io import probe
        from restyle.video.stylize import expected_frames, stylize_video

        directory = self.job_dir(job.id)
        p = job.params
        last_write = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write >= 0.5 or done == total:
                last_write = now
                self.store.update(job.id, frames_done=done, frames_total=total)

        try:
            choice = self.styles.resolve(job.style)
            stylizer = self.styles.stylizer(choice.model)
            info = probe(directory / job.input_name, max_pixels=self.settings.max_frame_pixels)
            self.store.update(job.id, frames_total=expected_frames(info, p["start"], p["duration"]))
            options = StylizeOptions(max_size=p["max_size"], style_weights=choice.style if choice.multi else None)
            result = stylize_video(
                directory / job.input_name,
                self.result_path(job.id),
                stylizer,
                options,
                stabilize=p["stabilize"],
                start=p["start"],
                duration=p["duration"],
                progress=progress,
                cancel=self._stop,
                info=info,
            )
            self.store.update(
                job.id,
                state="succeeded",
                frames_done=result.frames,
                frames_total=result.frames,
                finished_at=time.time(),
            )
            log.info("video job %s: %d frames in %.1f s", job.id, result.frames, result.seconds)
        except Cancelled:
            self.store.update(
                job.id, state="failed", error="the server shut down during this job", finished_at=time.time()
            )
        except UserError as exc:
            self.store.update(job.id, state="failed", error=scrub(str(exc)), finished_at=time.time())
        except Exception:  # noqa: BLE001 - a bug must not kill the worker; the details go to the log only
            log.exception("video job %s failed", job.id)
            self.store.update(job.id, state="failed", error="internal error", finished_at=time.time())
        finally:
            self._remove_input(job.id)

    def _remove_input(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is not None:
            (self.job_dir(job_id) / job.input_name).unlink(missing_ok=True)

    def cleanup(self, now: float | None = None) -> int:
        """Delete the files of jobs finished more than ``retention`` ago; forget them after 7x that."""
        now = time.time() if now is None else now
        expired = self.store.finished_before(now - self.settings.retention)
        for job_id in expired:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            self.store.update(job_id, state="expired")
        self.store.delete_expired_before(now - 7 * self.settings.retention)
        return len(expired)
