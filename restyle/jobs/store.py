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

Each job kind waits on a queue of its own (``queue_name``: ``restyle-jobs-video``,
``restyle-jobs-style``) in the same storage as the records, so a worker takes
only the kinds it serves (``restyle.jobs.kinds``: a CPU pool for video and a
GPU pool for training share one broker). Huey's consumer reads one queue, so
the queues are read through ``KindQueues`` (one SQL statement across the
kinds' rows of Huey's own ``task`` table, or one ``BRPOP`` across the kinds'
Redis lists): no polling loop per kind and no message bounced between workers.
The queue of ``QUEUE_NAME`` itself, where every job waited before kinds, is
still read by every worker: a message found there for a kind the worker does
not serve is moved to that kind's queue once (``restyle_jobs_dequeue``).

Every worker service writes a heartbeat (``worker:<host:pid>``: when, its
processes and kinds) every ``HEARTBEAT_S``; one silent for ``worker_ttl``
seconds no longer counts, for ``/readyz`` nor for the API's "is any worker
serving this kind?".
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
from huey.storage import RedisStorage, SqliteStorage

from restyle.errors import UserError
from restyle.jobs.kinds import KINDS, served_kinds
from restyle.settings import Settings

log = logging.getLogger("restyle.jobs")

# ``reserved``: a place in the quotas held while its upload arrives (``restyle.api.submission``); it becomes
# ``queued`` when the upload is accepted, or disappears (the request failed, or died: the reservation expires).
RESERVED = "reserved"
STATES = (RESERVED, "queued", "running", "succeeded", "failed", "cancelled", "expired")
FINISHED = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
QUEUE_NAME = "restyle-jobs"  # the records' key-value storage, and the one queue of every job before kinds
HEARTBEAT_S = 2.0  # how often a worker service says "alive" (more often under a short ``worker_ttl``)
WORKER_TTL: float = Settings.model_fields["worker_ttl"].default  # a heartbeat older than this no longer counts
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


def heartbeat_every(settings: Settings) -> float:
    """How often a worker service writes its heartbeat: ``HEARTBEAT_S``, or a third of a shorter ``worker_ttl``
    (a heartbeat or two may be late under load without the worker ceasing to count)."""
    return min(HEARTBEAT_S, settings.worker_ttl / 3)


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


def queue_name(kind: str) -> str:
    """The queue a ``kind`` job waits on (each kind its own, so a worker takes only the kinds it serves)."""
    return f"{QUEUE_NAME}-{kind}"


# Every queue a job message may wait on: each kind's, then the shared queue of the jobs queued before kinds.
ALL_QUEUES = (*(queue_name(kind) for kind in KINDS), QUEUE_NAME)


class KindQueues:
    """Messages on named queues of one Huey storage: put on one, take the oldest of several, count, list.

    Huey's storage reads and writes the one queue it was named after; the
    job kinds need several, read together by one worker. These are the same
    queues Huey would keep for those names (rows of its SQLite ``task``
    table with that ``queue`` column, or its Redis list ``huey.redis.NAME``)
    on the same connection, so nothing new is stored and a Huey built with
    one of those names sees the same messages.
    """

    def put(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def take(self, names: tuple[str, ...]) -> tuple[str, bytes] | None:
        """The oldest message on any of ``names`` (removed from it), with its queue's name; None: all empty."""
        raise NotImplementedError

    def size(self, names: tuple[str, ...]) -> int:
        raise NotImplementedError

    def items(self, names: tuple[str, ...]) -> list[bytes]:
        """Every message waiting on ``names`` (read, not taken)."""
        raise NotImplementedError

    @staticmethod
    def of(storage: Any) -> KindQueues:
        if isinstance(storage, SqliteStorage):
            return _SqliteQueues(storage)
        if isinstance(storage, RedisStorage):
            return _RedisQueues(storage)
        raise TypeError(f"no job queues on a {type(storage).__name__}")


class _SqliteQueues(KindQueues):
    """The kinds' rows of Huey's ``task`` table: one ``select ... where queue in (...)`` takes the oldest
    across all of them (first in, first out over every kind the worker serves), under Huey's own lock."""

    def __init__(self, storage: SqliteStorage):
        self.storage = storage

    def put(self, name: str, data: bytes) -> None:
        self.storage.sql(
            "insert into task (queue, data, priority) values (?, ?, ?)",
            (name, self.storage.to_blob(data), 0),
            commit=True,
        )

    def take(self, names: tuple[str, ...]) -> tuple[str, bytes] | None:
        marks = ",".join("?" * len(names))
        # A read first (no write lock), as Huey's own dequeue: an idle worker polls without blocking writers.
        if not self.storage.sql(f"select 1 from task where queue in ({marks}) limit 1", names, results=True):
            return None
        with self.storage.db(commit=True) as curs:
            curs.execute(
                f"select id, queue, data from task where queue in ({marks}) order by priority desc, id limit 1", names
            )
            row = curs.fetchone()
            if row is None:
                return None
            curs.execute("delete from task where id = ?", (row[0],))
            return (str(row[1]), bytes(row[2])) if curs.rowcount == 1 else None

    def size(self, names: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(names))
        return int(self.storage.sql(f"select count(id) from task where queue in ({marks})", names, results=True)[0][0])

    def items(self, names: tuple[str, ...]) -> list[bytes]:
        marks = ",".join("?" * len(names))
        rows = self.storage.sql(
            f"select data from task where queue in ({marks}) order by priority desc, id", names, results=True
        )
        return [bytes(data) for (data,) in rows]


class _RedisQueues(KindQueues):
    """Huey's Redis list per queue name: one ``BRPOP`` over the kinds' lists waits for whichever gets a message
    first (up to the storage's ``read_timeout``, as Huey's own blocking read). Redis pops the first non-empty
    list in the order given, so the order turns on every take: a busy kind cannot starve another."""

    def __init__(self, storage: RedisStorage):
        self.storage = storage
        self._turn = 0

    def key(self, name: str) -> str:
        return f"huey.redis.{self.storage.clean_name(name)}"  # RedisStorage.queue_key for that name

    def put(self, name: str, data: bytes) -> None:
        self.storage.conn.lpush(self.key(name), data)

    def take(self, names: tuple[str, ...]) -> tuple[str, bytes] | None:
        self._turn = (self._turn + 1) % len(names)
        order = names[self._turn :] + names[: self._turn]
        by_key = {self.key(name): name for name in order}
        from redis.exceptions import TimeoutError as RedisTimeout

        try:
            got = self.storage.conn.brpop(list(by_key), timeout=self.storage.read_timeout)
        except RedisTimeout:  # a slow answer: as Huey's own read, nothing taken this time
            return None
        if not got:
            return None
        key, data = got
        return by_key[key.decode() if isinstance(key, bytes) else key], bytes(data)

    def size(self, names: tuple[str, ...]) -> int:
        pipe = self.storage.conn.pipeline()
        for name in names:
            pipe.llen(self.key(name))
        return int(sum(pipe.execute()))

    def items(self, names: tuple[str, ...]) -> list[bytes]:
        return [bytes(data) for name in names for data in self.storage.conn.lrange(self.key(name), 0, -1)[::-1]]


class _JobQueuesHuey:
    """What the consumer's workers call to get a job: the next message on the queue of a kind this worker
    serves (``restyle_kinds``), or on the shared queue of the jobs queued before kinds existed."""

    restyle_kinds: tuple[str, ...]
    restyle_queues: KindQueues

    def dequeue(self) -> Any:
        huey: Any = self
        names = (*(queue_name(kind) for kind in huey.restyle_kinds), QUEUE_NAME)
        got = huey.restyle_queues.take(names)
        if got is None:
            return None
        name, data = got
        task = huey.deserialize_task(data)
        if name == QUEUE_NAME and task.name not in huey.restyle_kinds:
            # Queued before kinds (or by an older API replica): its kind's own workers run it. Moved once, never
            # bounced: a worker of that kind reads that queue. Until then the lost-message sweep sees it on it.
            huey.restyle_queues.put(queue_name(task.name), data)
            log.info("a %s job's message from the shared queue moved to the %s queue", task.name, task.name)
            return None
        return task


class _SqliteJobsHuey(_JobQueuesHuey, SqliteHuey):
    pass


class _RedisJobsHuey(_JobQueuesHuey, RedisHuey):
    pass


def make_huey(
    settings: Settings,
    run: Callable[[Huey, Settings, str, int], None] | None = None,
    timeout: float | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> Huey:
    """The queue the settings name; the API and every worker build it the same way (same tasks, same names).

    ``run(huey, settings, job_id, delivery)`` is what a task does when a worker takes it
    (``restyle.jobs.worker.run_delivery``); the API, which only enqueues, leaves it out. So the store names
    the tasks and never imports the worker that runs them. ``kinds``: the job kinds whose queues ``dequeue``
    reads (a worker's ``--kinds``); enqueueing always goes to the job's own kind's queue.

    ``timeout``: the longest a broker call waits (SQLite's busy timeout; for Redis the socket timeout, at most
    ``REDIS_SOCKET_TIMEOUT_S``). Workers use the default, ``WORKER_BROKER_TIMEOUT_S``; API processes pass
    ``Settings.broker_timeout`` (plus a margin), so that a call a request stopped waiting for gives up soon too.
    """
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"job kinds must be some of {KINDS}, not {kinds!r}")
    if settings.broker_url:
        if not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise UserError(f"RESTYLE_BROKER_URL must be empty (SQLite) or redis://..., not {settings.broker_url!r}")
        # socket timeouts: an API request must fail fast (503) when Redis is gone, not hang.
        from redis import ConnectionPool

        socket_timeout = REDIS_SOCKET_TIMEOUT_S if timeout is None else min(REDIS_SOCKET_TIMEOUT_S, timeout)
        pool = ConnectionPool.from_url(
            settings.broker_url, socket_timeout=socket_timeout, socket_connect_timeout=min(2.0, socket_timeout)
        )
        huey: Huey = _RedisJobsHuey(QUEUE_NAME, connection_pool=pool, results=False, blocking=True, read_timeout=1)
    else:
        settings.storage_root.mkdir(parents=True, exist_ok=True)
        huey = _SqliteJobsHuey(
            QUEUE_NAME,
            filename=str(settings.storage_root / "queue.sqlite3"),
            results=False,
            timeout=WORKER_BROKER_TIMEOUT_S if timeout is None else timeout,
        )
    huey.restyle_kinds = tuple(kinds)  # type: ignore[attr-defined]
    huey.restyle_queues = KindQueues.of(huey.storage)  # type: ignore[attr-defined]
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
        task = self.huey.restyle_tasks[job.kind].s(job.id, job.delivery)  # type: ignore[attr-defined]
        with self._guard():
            self.queues.put(queue_name(job.kind), self.huey.serialize_task(task))

    @property
    def queues(self) -> KindQueues:
        return self.huey.restyle_queues  # type: ignore[attr-defined,no-any-return]

    def pending_deliveries(self) -> set[tuple[str, int]]:
        """``(job id, delivery)`` of every message waiting on any queue (read, not taken)."""
        with self._guard():
            items = self.queues.items(ALL_QUEUES)
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
        """Messages waiting on every queue; raises ``QueueUnavailable`` when the broker is gone."""
        with self._guard():
            return self.queues.size(ALL_QUEUES)

    def pending_by_kind(self) -> dict[str, int]:
        """Messages waiting on each kind's queue (those still on the shared queue of old are in ``ping`` only)."""
        with self._guard():
            return {kind: self.queues.size((queue_name(kind),)) for kind in KINDS}

    def worker_alive(self, name: str, processes: int, kinds: tuple[str, ...] = KINDS, at: float | None = None) -> None:
        """Write the heartbeat of the worker service ``name`` (``host:pid``): its processes and the kinds it
        serves, for ``/readyz`` and for the API's "may this kind be queued?" (``restyle.jobs.kinds.accepts``).
        ``at``: when (default now)."""
        host, _, pid = name.rpartition(":")
        record = {
            "seen": time.time() if at is None else at,
            "processes": processes,
            "kinds": list(kinds),
            "host": host,
            "pid": int(pid) if pid.isdigit() else None,
        }
        with self._guard():
            self.storage.put_data(f"worker:{name}", json.dumps(record).encode())

    def worker_gone(self, name: str) -> None:
        with self._guard():
            self.storage.delete_data(f"worker:{name}")

    def workers(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Worker services that said "alive" within ``Settings.worker_ttl`` seconds (of ``now``), by name; each
        record's ``kinds`` says what it serves (``restyle.jobs.kinds.served_kinds`` reads old records too).

        An expired heartbeat (a worker killed before it could take its mark away) is only ignored, never
        deleted here: a worker that was merely slow to beat counts again with its next heartbeat.
        """
        now = time.time() if now is None else now
        with self._guard():
            items = self.storage.result_items()
        out = {}
        for key, value in items.items():
            if not key.startswith("worker:"):
                continue
            try:
                info = json.loads(bytes(value))
                seen = float(info.get("seen", 0))
            except (ValueError, TypeError, AttributeError):
                continue  # not a heartbeat this version can read: it counts for nothing
            if now - seen <= self.settings.worker_ttl:
                out[key.removeprefix("worker:")] = {**info, "kinds": list(served_kinds(info))}
        return out
