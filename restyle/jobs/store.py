"""The queue (Huey) and the shared job records, on one storage: SQLite on one machine, Redis on many.

Why Huey (see ``docs/architecture.md`` for the comparison): it is the one
well-kept queue whose *same code* runs embedded on a SQLite file (no server
to install) and on a shared Redis. Huey dequeues a message before running it
and has no late acknowledgement, so delivery guarantees live here instead:
every job is a JSON record in Huey's key-value storage (``job:<id>``) with a
*lease* that its worker renews; a worker that dies (``kill -9``, OOM) stops
renewing, and whoever sweeps next puts the job back on the queue. Records,
queue and counters sit in the same storage, so every API replica and worker
sees one state, and "is the broker up" is one question.

Duplicate deliveries (a requeue racing a slow worker) are made harmless by
claim keys written with ``put_if_empty``: each delivery of a job runs at most
once, wherever it lands. A message lost outright (taken by a process killed
before it claimed the job) is found by comparing the ``queued`` records with
the messages still waiting (``pending_deliveries``), and enqueued again.

``storage_problem`` says when the storage root is short of free space
(``min_free_bytes``): ``/readyz`` is 503 on it, and uploads refuse with 507 on
the same test (with the upload's declared size added) before writing a byte.
A broker whose own file cannot grow (SQLite's "database or disk is full") is
``BrokerFull``: a 507 too, not a 503, since waiting for the broker will not help.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.constants import EmptyData

from restyle.errors import UserError
from restyle.settings import Settings

log = logging.getLogger("restyle.jobs")

# ``reserved``: a place in the quotas held while its upload arrives (``restyle.api.submission``); it becomes
# ``queued`` when the upload is accepted, or disappears (the request failed, or died: the reservation expires).
RESERVED = "reserved"
STATES = (RESERVED, "queued", "running", "succeeded", "failed", "cancelled", "expired")
FINISHED = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
QUEUE_NAME = "restyle-jobs"
HEARTBEAT_S = 2.0  # how often a worker service says "alive"
WORKER_TTL = 10.0  # a worker that has not said "alive" for this long no longer counts in /readyz
# How long a broker call may wait for SQLite's write lock (or a Redis socket) in a worker process. API
# processes pass ``Settings.broker_timeout`` (2 s) plus half a second instead (``restyle.api.jobs``): a call
# their request gave up on must not hold the connection (and SQLite's per-process lock) much longer.
WORKER_BROKER_TIMEOUT_S = 30.0
REDIS_SOCKET_TIMEOUT_S = 5.0


class QueueUnavailable(UserError):
    """The broker (Redis, or the SQLite file) cannot be reached: 503 with what to check, never a traceback."""

    http_status = 503
    exit_code = 1


class BrokerFull(QueueUnavailable):
    """The broker cannot store more (SQLite: "database or disk is full"): the storage is full, a 507 like a full
    upload folder, which the client may wait out; never a 503 that would send it retrying at once."""

    http_status = 507
    error_kind = "storage_full"
    public_message = True


class JobNotFound(UserError):
    http_status = 404


def worker_id() -> str:
    """This process, as recorded on the jobs it runs (computed per call: workers are forked)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _broker_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.OperationalError, sqlite3.DatabaseError]
    try:
        import redis.exceptions

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(errors)


BROKER_ERRORS = _broker_errors()


def broker_failure(settings: Settings, exc: BaseException) -> QueueUnavailable:
    """The error to raise for a broker exception: ``BrokerFull`` (507) when its storage is full, else
    ``QueueUnavailable`` (503) naming the broker (an authenticated caller and the operator may read it)."""
    if isinstance(exc, sqlite3.OperationalError) and "database or disk is full" in str(exc):
        return BrokerFull("job storage is full (the job queue cannot grow); retry later")
    return QueueUnavailable(
        f"the job queue is unavailable ({describe_broker(settings)}: {type(exc).__name__}); try again shortly"
    )


def describe_broker(settings: Settings) -> str:
    """Where the queue lives, for messages (no password)."""
    if not settings.broker_url:
        return f"the SQLite queue {settings.storage_root / 'queue.sqlite3'}"
    from urllib.parse import urlsplit

    url = urlsplit(settings.broker_url)
    return f"Redis at {url.hostname or 'localhost'}:{url.port or 6379}"


def min_free_bytes(settings: Settings) -> int:
    """The free space the storage root must keep (``RESTYLE_MIN_FREE_BYTES``)."""
    return settings.min_free_bytes


def free_bytes(root: Path | str) -> int | None:
    """Bytes an unprivileged process may still write on the file system of ``root`` (None: cannot tell).

    A root not created yet is measured on its nearest existing parent: the same file system.
    """
    path = Path(root).absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def storage_problem(settings: Settings, incoming: int = 0) -> str | None:
    """Why the storage root cannot take ``incoming`` more bytes (free space would fall under ``min_free_bytes``),
    or None.

    The message names amounts only, never the path: it is shown on the open ``/readyz`` and in 507 answers.
    """
    free, need, incoming = free_bytes(settings.storage_root), min_free_bytes(settings), max(0, incoming)
    if free is None or free - incoming >= need:
        return None
    if incoming:
        return (
            f"job storage is almost full ({free / 1e6:.0f} MB free; the upload needs {incoming / 1e6:.0f} MB "
            f"and {need / 1e6:.0f} MB must stay free)"
        )
    return f"job storage is almost full ({free / 1e6:.0f} MB free, at least {need / 1e6:.0f} MB needed)"


def make_huey(
    settings: Settings, run: Callable[[Huey, Settings, str, int], None] | None = None, timeout: float | None = None
) -> Huey:
    """The queue the settings name; the API and every worker build it the same way (same tasks, same names).

    ``run(huey, settings, job_id, delivery)`` is what a task does when a worker takes it
    (``restyle.jobs.worker.run_delivery``); the API, which only enqueues, leaves it out. So the store names
    the tasks and never imports the worker that runs them.

    ``timeout``: the longest a broker call waits (SQLite's busy timeout; for Redis the socket timeout, at most
    ``REDIS_SOCKET_TIMEOUT_S``). Workers use the default, ``WORKER_BROKER_TIMEOUT_S``; API processes pass
    ``Settings.broker_timeout`` (plus a margin), so that a call a request stopped waiting for gives up soon too.
    """
    if settings.broker_url:
        if not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise UserError(f"RESTYLE_BROKER_URL must be empty (SQLite) or redis://..., not {settings.broker_url!r}")
        # socket timeouts: an API request must fail fast (503) when Redis is gone, not hang.
        from redis import ConnectionPool

        socket_timeout = REDIS_SOCKET_TIMEOUT_S if timeout is None else min(REDIS_SOCKET_TIMEOUT_S, timeout)
        pool = ConnectionPool.from_url(
            settings.broker_url, socket_timeout=socket_timeout, socket_connect_timeout=min(2.0, socket_timeout)
        )
        huey: Huey = RedisHuey(QUEUE_NAME, connection_pool=pool, results=False, blocking=True, read_timeout=1)
    else:
        settings.storage_root.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(
            QUEUE_NAME,
            filename=str(settings.storage_root / "queue.sqlite3"),
            results=False,
            timeout=WORKER_BROKER_TIMEOUT_S if timeout is None else timeout,
        )
    register_tasks(huey, settings, run)
    return huey


def register_tasks(huey: Huey, settings: Settings, run: Callable[[Huey, Settings, str, int], None] | None) -> None:
    """Register the job kinds on ``huey`` (same names in the API and in every worker); ``run`` runs a delivery."""

    def deliver(job_id: str, delivery: int) -> None:
        if run is None:
            raise RuntimeError("this queue only enqueues jobs; a `restyle worker` runs them")
        run(huey, settings, job_id, delivery)

    @huey.task(name="video")
    def video(job_id: str, delivery: int) -> None:  # restyle.jobs.tasks.video
        deliver(job_id, delivery)

    @huey.task(name="style")
    def style(job_id: str, delivery: int) -> None:  # a new style: restyle.jobs.tasks.style
        deliver(job_id, delivery)

    huey.restyle_tasks = {"video": video, "style": style}  # type: ignore[attr-defined]
    huey.restyle_stopping = threading.Event()  # type: ignore[attr-defined]  # set: requeue running jobs, stop
    huey.restyle_context = {}  # type: ignore[attr-defined]  # per-process caches (the style catalogue)


@dataclass
class Job:
    """One job's shared record (JSON in the broker): everything an API replica needs to answer for it."""

    id: str
    kind: str
    state: str
    style: str
    params: dict[str, Any]
    created_at: float
    input_name: str
    owner: str = "anonymous"  # a hash of the API key that submitted it (quota per key)
    frames_done: int = 0
    frames_total: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    attempts: int = 0  # runs started (a worker death costs one; a graceful requeue gives it back)
    delivery: int = 0  # increases on every enqueue; the claim key of a run
    worker: str | None = None  # "host:pid" of the process running it
    lease_until: float | None = None
    result_bytes: int = 0

    @property
    def progress(self) -> float:
        if self.state == "succeeded":
            return 1.0
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Job:
        raw = json.loads(bytes(data))
        known = _JOB_FIELDS
        return cls(**{k: v for k, v in raw.items() if k in known})


_JOB_FIELDS = frozenset(f.name for f in fields(Job))


# User styles made through ``POST /v1/styles``: their owner (``restyle.api.submission``) and their last use.
STYLE_OWNER_PREFIX = "style-owner:"
STYLE_USED_PREFIX = "style-used:"
# A user style's use is written to the broker (``style-used:NAME``) at most this often per style and process.
STYLE_USE_RECORD_EVERY_S = 3600.0


def style_use_record_every(settings: Settings) -> float:
    """How often a use of one style is written: hourly, more often under a short ``style_retention``."""
    return min(STYLE_USE_RECORD_EVERY_S, settings.style_retention / 4)


def _record_time(value: bytes) -> float:
    """The ``at`` of a JSON record (0 when it has none or is unreadable)."""
    try:
        return float(json.loads(value).get("at", 0.0))
    except (ValueError, TypeError, AttributeError):
        return 0.0


def _style_files_bytes(directory: Path, names: set[str]) -> int:
    """Bytes of the files of the styles ``names`` in ``directory``: ``NAME.onnx``, its card ``NAME.md``, any
    other ``NAME.*`` (names hold no dot, so no other style's file matches)."""
    total = 0
    try:
        entries = os.scandir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    with entries:
        for entry in entries:
            if entry.name.split(".", 1)[0] not in names:
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


def _tree_bytes(folder: Path | str) -> int:
    total = 0
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):  # a job finished (and tidied) while we looked
        return 0
    with entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    total += _tree_bytes(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


class JobStore:
    """Job records, cancel flags, claim keys and worker heartbeats in the queue's own storage."""

    def __init__(self, huey: Huey, settings: Settings):
        self.huey = huey
        self.storage = huey.storage
        self.settings = settings
        self.root = Path(settings.storage_root)
        # key -> (stored bytes, parsed record): ``all`` parses only records that changed since it last looked.
        self._parsed: dict[str, tuple[bytes, Job]] = {}
        self._parsed_lock = threading.Lock()
        # (job id, delivery) of queued jobs whose message this process's sweeps found missing -> when first seen.
        self.missing_since: dict[tuple[str, int], float] = {}

    # -- errors -----------------------------------------------------------------------------------
    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except BROKER_ERRORS as exc:
            raise broker_failure(self.settings, exc) from None

    # -- files ------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if len(job_id) != 32 or not all(c in "0123456789abcdef" for c in job_id):
            raise JobNotFound("no such job")  # never let a request-supplied id near a path
        return self.root / "jobs" / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.mp4"

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def bytes_used(self) -> int:
        """Bytes of job files under the storage root plus the installed user styles made through the API (the
        quota's measure; the small queue file, bundled styles and models the operator put in are not counted).

        ``os.scandir`` rather than ``os.walk`` plus ``lstat`` by path: the same
        answer with a third of the Python work per file.
        """
        return _tree_bytes(self.root / "jobs") + self.style_bytes()

    def style_bytes(self) -> int:
        """Bytes of the installed user styles that have an owner record (``style-owner:NAME``)."""
        names = {key.removeprefix(STYLE_OWNER_PREFIX) for key in self.items(STYLE_OWNER_PREFIX)}
        return _style_files_bytes(self.settings.user_models_dir, names) if names else 0

    # -- the last use of user styles (``style_retention``) -------------------------------------------
    def record_style_use(self, name: str, at: float | None = None) -> None:
        """Write ``style-used:NAME``: the user style ``name`` was used (a photo, a preview, a video job)."""
        self.write_json(f"{STYLE_USED_PREFIX}{name}", {"at": time.time() if at is None else at})

    def style_uses(self) -> dict[str, float]:
        """When each user style was last recorded as used, by name."""
        return {
            key.removeprefix(STYLE_USED_PREFIX): _record_time(value)
            for key, value in self.items(STYLE_USED_PREFIX).items()
        }

    # -- records ----------------------------------------------------------------------------------
    def put(self, job: Job) -> None:
        with self._guard():
            self.storage.put_data(f"job:{job.id}", job.to_bytes())

    def get(self, job_id: str) -> Job | None:
        with self._guard():
            data = self.storage.peek_data(f"job:{job_id}")
        return None if data is EmptyData else Job.from_bytes(data)

    def require(self, job_id: str) -> Job:
        self.job_dir(job_id)
        job = self.get(job_id)
        if job is None:
            raise JobNotFound(f"no such job: {job_id}")
        return job

    def all(self) -> list[Job]:
        """Every job record (quotas, sweeps, metrics).

        Reading the records is cheap; parsing them was not: 10,000 records took
        ~2 s to parse, per submit and per sweep. Unchanged records (the same
        bytes) reuse their parsed form, and each caller gets its own copy to
        change and ``put``.
        """
        with self._guard():
            items = self.storage.result_items()
        with self._parsed_lock:
            known = self._parsed
            fresh: dict[str, tuple[bytes, Job]] = {}
            for key, value in items.items():
                if not key.startswith("job:"):
                    continue
                data = bytes(value)
                hit = known.get(key)
                fresh[key] = hit if hit is not None and hit[0] == data else (data, Job.from_bytes(data))
            self._parsed = fresh
        return [replace(job, params=dict(job.params)) for _, job in fresh.values()]

    def forget(self, job_id: str) -> None:
        """Drop the record and every key that belongs to it."""
        with self._guard():
            for key in [
                k
                for k in self.storage.result_items()
                if k.startswith((f"claim:{job_id}:", f"sweep:{job_id}:", f"lost:{job_id}:"))
            ]:
                self.storage.delete_data(key)
            self.storage.delete_data(f"cancel:{job_id}")
            self.storage.delete_data(f"job:{job_id}")

    # -- other records beside the jobs (the submit lock, Idempotency-Key answers, style owners) ----------------
    def read_json(self, key: str) -> dict[str, Any] | None:
        """The JSON object stored at ``key``; None when there is none (or it is not a JSON object)."""
        with self._guard():
            data = self.storage.peek_data(key)
        if data is EmptyData:
            return None
        try:
            value = json.loads(bytes(data))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def write_json(self, key: str, value: dict[str, Any]) -> None:
        with self._guard():
            self.storage.put_data(key, json.dumps(value, separators=(",", ":")).encode())

    def delete_key(self, key: str) -> None:
        with self._guard():
            self.storage.delete_data(key)

    def items(self, prefix: str) -> dict[str, bytes]:
        """Every stored value whose key starts with ``prefix``, by key."""
        with self._guard():
            found = self.storage.result_items()
        return {key: bytes(value) for key, value in found.items() if key.startswith(prefix)}

    # -- delivery -----------------------------------------------------------------------------------
    def enqueue(self, job: Job) -> None:
        """Bump the delivery number, save, and put a message on the queue."""
        job.delivery += 1
        job.state = "queued"
        job.worker = None
        job.lease_until = None
        self.put(job)
        with self._guard():
            self.huey.restyle_tasks[job.kind](job.id, job.delivery)  # type: ignore[attr-defined]

    def pending_deliveries(self) -> set[tuple[str, int]]:
        """``(job id, delivery)`` of every message waiting on the queue (read, not taken)."""
        with self._guard():
            items = self.storage.enqueued_items()
        out: set[tuple[str, int]] = set()
        for data in items:
            try:
                message = self.huey.serializer.deserialize(bytes(data))
                job_id, delivery = message.args[0], int(message.args[1])
            except Exception:  # noqa: BLE001 - a message that is not ours (or unreadable) names no job
                continue
            out.add((str(job_id), delivery))
        return out

    def once(self, key: str) -> bool:
        """True for the first caller only, across every process and machine (the claim of a delivery)."""
        with self._guard():
            return bool(self.storage.put_if_empty(key, b"1"))

    def request_cancel(self, job_id: str) -> None:
        with self._guard():
            self.storage.put_data(f"cancel:{job_id}", b"1")

    def cancel_requested(self, job_id: str) -> bool:
        with self._guard():
            return bool(self.storage.has_data_for_key(f"cancel:{job_id}"))

    # -- health --------------------------------------------------------------------------------------
    def ping(self) -> int:
        """Messages waiting on the queue; raises ``QueueUnavailable`` when the broker is gone."""
        with self._guard():
            return int(self.storage.queue_size())

    def worker_alive(self, name: str, processes: int) -> None:
        with self._guard():
            self.storage.put_data(f"worker:{name}", json.dumps({"seen": time.time(), "processes": processes}).encode())

    def worker_gone(self, name: str) -> None:
        with self._guard():
            self.storage.delete_data(f"worker:{name}")

    def workers(self) -> dict[str, dict[str, Any]]:
        """Worker services that said "alive" within ``WORKER_TTL`` seconds."""
        now = time.time()
        with self._guard():
            items = self.storage.result_items()
        out = {}
        for key, value in items.items():
            if key.startswith("worker:"):
                info = json.loads(bytes(value))
                if now - info.get("seen", 0) <= WORKER_TTL:
                    out[key.removeprefix("worker:")] = info
        return out
