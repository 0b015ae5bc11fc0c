"""The one way a job is submitted (``POST /v1/jobs/video``, ``POST /v1/styles``): reserve, upload, check, commit.

Every job-creating route hands ``submit`` a ``SubmitSpec`` (its upload field,
limits and a ``prepare`` coroutine that validates and builds the job); the
steps around it are the same for every kind:

1. **Reserve**, before a byte of the body is read, under the broker lock
   (``BrokerLock``): a first answer remembered for this ``Idempotency-Key`` is
   returned as it was; else a kind that live workers exist for, none of
   which serves it (a style job with only video workers), is refused at once
   (``NoWorker``, 503: nothing reserved, nothing queued; see
   ``restyle.jobs.kinds.accepts``); else the quotas are counted from the job
   records and, if there is room, a job record in state ``reserved`` is written. Counting
   and writing under one lock held in the broker itself (not in this process)
   is what makes a burst of submits against a quota of 1 accept exactly one,
   however many API replicas share the broker.
2. **Upload** through the one reader (``restyle.api.uploads``: body timeout
   408, size limit 413), into ``STORAGE_ROOT/jobs/<id>/``.
3. **Prepare** (the route's own checks: parameters, style, probe/decode).
4. **Commit** under the lock: the reservation must still be there, the
   route's last check runs (a style name still free), the record becomes
   ``queued`` and the message is enqueued, the idempotent answer is stored.
5. On any failure: the files and the reservation are removed (a request
   that fails leaves nothing behind and holds no quota).

Every broker call runs on a worker thread with ``RESTYLE_BROKER_TIMEOUT``
(2 s): a busy broker (a SQLite file someone holds a write lock on, a slow
Redis) is a 503 in about that time, never a stalled event loop. A call that
gives up may still finish later on its thread; it then undoes itself.

A reservation whose request died (the replica was killed mid-upload) expires
after ``reservation_ttl`` and is removed by the next submit. The records
stored next to the jobs, in the broker's key-value storage:

* ``lock:submit``: the lock (JSON: token, lease end); a holder that died is
  replaced after the lease, through a once-only ``put_if_empty`` key;
* ``idem:<owner>:<kind>:<hash of the key>``: an Idempotency-Key's claim
  (``pending``) or its first answer (``done``: status, body, Location);
* ``style-owner:<name>``: who made a user style (outlives the job records).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import re
import shutil
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
from anyio import to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from huey.constants import EmptyData

from restyle.api.deps import Caller
from restyle.api.uploads import SavedUpload, declared_length, save_upload
from restyle.errors import UserError
from restyle.jobs.kinds import accepts, no_worker_message
from restyle.jobs.store import ACTIVE, BROKER_ERRORS, Job, JobStore, QueueUnavailable, broker_failure
from restyle.jobs.store import RESERVED as RESERVED  # a record that holds its place while its upload arrives
from restyle.settings import Settings

log = logging.getLogger("restyle.api")
T = TypeVar("T")

LOCK_KEY = "lock:submit"
LOCK_LEASE_S = 15.0  # a lock holder that went silent this long (killed) is replaced; a hold lasts milliseconds
LOCK_POLL_S = 0.01
OPEN_TIMEOUT_S = 10.0  # the longest wait for the queue to open (once per API process)
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_GC_EVERY_S = 60.0  # how often (per process) expired idempotency records are deleted
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# The header in the OpenAPI document of every job-creating route (``openapi_extra={"parameters": [...]}``).
IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A retry with the same key (from the same API key) returns the first answer (same job, same "
    "status) and creates no second job; 409 while the first request is still being processed.",
}


# -- errors -----------------------------------------------------------------------------------------------
class QueueFull(UserError):
    """Too many jobs waiting, server-wide or for this API key."""

    http_status = 429
    retry_after = 30


class BrokerBusy(QueueUnavailable):
    """The broker did not answer within ``broker_timeout`` (503, retry shortly): to a client, the queue is
    unavailable, as when the broker is down."""

    error_kind = "queue_unavailable"
    retry_after = 2


class NoWorker(UserError):
    """Workers are alive but none serves this job kind (only video workers, and a style job): queued, it would
    wait for nobody, so it is refused at once with what to start. 503 with its message, like an unavailable
    queue: the server is fine, a part of the deployment is missing; ``Retry-After`` for a client that waits."""

    http_status = 503
    error_kind = "no_worker"
    public_message = True
    retry_after = 30


class IdempotencyConflict(UserError):
    """A request with the same Idempotency-Key is still being processed."""

    http_status = 409
    retry_after = 1


# -- talking to the broker ---------------------------------------------------------------------------------
@contextlib.contextmanager
def broker_errors(store: JobStore) -> Iterator[None]:
    """Broker exceptions as ``JobStore`` reports them: ``QueueUnavailable`` (503), ``BrokerFull`` (507)."""
    try:
        yield
    except BROKER_ERRORS as exc:
        raise broker_failure(store.settings, exc) from None


def _read_json(store: JobStore, key: str) -> dict[str, Any] | None:
    return store.read_json(key)


def _write_json(store: JobStore, key: str, value: dict[str, Any]) -> None:
    store.write_json(key, value)


def _delete(store: JobStore, key: str) -> None:
    store.delete_key(key)


class _Call:
    """Hand-off between a broker call on a worker thread and the request that may stop waiting for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = False
        self.abandoned = False
        self.result: Any = None


async def bounded(
    fn: Callable[[], T], timeout: float, undo: Callable[[T], None] | None = None, what: str = "the job queue"
) -> T:
    """``fn()`` on a worker thread, waited for at most ``timeout`` seconds (then ``BrokerBusy``, 503).

    The thread cannot be interrupted: when the wait gives up, ``fn`` goes on,
    and if it then succeeds ``undo(result)`` runs on its thread, so a request
    that answered 503 leaves nothing behind (no reservation, no job).
    """
    call = _Call()

    def run() -> T:
        try:
            result = fn()
        except BaseException:
            with call.lock:
                call.finished = True
            raise
        with call.lock:
            if not call.abandoned:
                call.finished, call.result = True, result
                return result
        if undo is not None:
            try:
                undo(result)
            except Exception:  # noqa: BLE001 - best effort; a reservation left behind expires by itself
                log.warning("could not undo a broker call that finished after its request gave up", exc_info=True)
        return result

    try:
        with anyio.fail_after(timeout):
            return await to_thread.run_sync(run, abandon_on_cancel=True)
    except TimeoutError:
        with call.lock:
            if call.finished and not call.abandoned:
                return call.result  # it finished just as the wait ran out: use it
            call.abandoned = True
        raise BrokerBusy(f"{what} did not answer within {timeout:g} s; try again shortly") from None


class BrokerLock:
    """A lock in the broker's key-value storage (``put_if_empty``), held by one request across every replica.

    It guards a few milliseconds of reads and writes (count the quotas and
    write a reservation; check a style name and enqueue). A holder that died
    (its process killed) is replaced once its lease passed: the replacement
    claims a once-only key named after the dead holder's token, so two
    waiters never both take over.
    """

    def __init__(self, store: JobStore, key: str = LOCK_KEY, lease: float = LOCK_LEASE_S) -> None:
        self.store = store
        self.key = key
        self.lease = lease

    @contextlib.contextmanager
    def hold(self, deadline: float) -> Iterator[None]:
        """Hold the lock; ``BrokerBusy`` when it cannot be had before ``deadline`` (a ``time.monotonic()``)."""
        storage = self.store.storage
        value = json.dumps({"token": uuid.uuid4().hex, "until": time.time() + self.lease}).encode()
        with broker_errors(self.store):
            while not self._take(storage, value):
                if time.monotonic() >= deadline:
                    raise BrokerBusy("the job queue is busy (its submit lock is held); try again shortly")
                time.sleep(LOCK_POLL_S * (0.5 + random.random()))
        try:
            yield
        finally:
            with contextlib.suppress(*BROKER_ERRORS):
                current = storage.peek_data(self.key)
                if current is not EmptyData and bytes(current) == value:
                    storage.delete_data(self.key)

    def _take(self, storage: Any, value: bytes) -> bool:
        if storage.put_if_empty(self.key, value):
            return True
        current = storage.peek_data(self.key)
        if current is EmptyData:
            return False  # released meanwhile: try again
        try:
            info = json.loads(bytes(current))
            token, until = str(info["token"]), float(info["until"])
        except (ValueError, KeyError, TypeError):
            token, until = hashlib.sha256(bytes(current)).hexdigest(), 0.0
        if until >= time.time():
            return False
        # The holder's lease ran out: exactly one waiter may replace it.
        if storage.put_if_empty(f"{self.key}:replaced:{token}", b"1"):
            log.warning("the job submit lock was held past its lease (a killed API process?); taken over")
            storage.put_data(self.key, value)
            return True
        return False


# -- style owners ------------------------------------------------------------------------------------------
def style_owner_key(name: str) -> str:
    return f"style-owner:{name}"


def style_owner(store: JobStore, name: str) -> str | None:
    """Who made the user style ``name``: its owner record, else its newest job's owner; None: nobody (bundled,
    or a model the operator put into the models folder)."""
    record = _read_json(store, style_owner_key(name))
    if record is not None and isinstance(record.get("owner"), str):
        return record["owner"]
    jobs = [j for j in store.all() if j.kind == "style" and j.style == name and j.state != RESERVED]
    return max(jobs, key=lambda j: j.created_at).owner if jobs else None


def set_style_owner(store: JobStore, name: str, owner: str, job_id: str) -> None:
    _write_json(store, style_owner_key(name), {"owner": owner, "job": job_id, "at": time.time()})


def forget_style_owner(store: JobStore, name: str) -> None:
    _delete(store, style_owner_key(name))


def style_owners(store: JobStore) -> dict[str, str]:
    """Every recorded user-style owner, by style name (for listings)."""
    out = {}
    for key, value in store.items("style-owner:").items():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            out[key.removeprefix("style-owner:")] = str(json.loads(value)["owner"])
    return out


# -- reservations ------------------------------------------------------------------------------------------
@dataclass
class Reservation:
    """A place in the quotas (a ``reserved`` job record), or the remembered first answer to replay."""

    job_id: str = ""
    idempotency: str | None = None  # the broker key of this request's Idempotency-Key claim
    replay: dict[str, Any] | None = None


def reservation_ttl(settings: Any) -> float:
    """How long a reservation may live: the upload, the probe, the commit, and a margin."""
    return settings.body_timeout + settings.request_timeout + 4 * settings.broker_timeout + 60.0


def idempotency_key(request: Request, owner: str, kind: str) -> str | None:
    """The broker key for the request's ``Idempotency-Key`` header (per API key and kind), or None."""
    given = request.headers.get(IDEMPOTENCY_HEADER)
    if given is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(given):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", IDEMPOTENCY_HEADER),
                    "msg": "Idempotency-Key must be 1 to 255 visible ASCII characters",
                }
            ]
        )
    return f"idem:{owner}:{kind}:{hashlib.sha256(given.encode()).hexdigest()[:40]}"


_last_gc: dict[str, float] = {}
_gc_lock = threading.Lock()


def _collect_idempotency(store: JobStore, now: float) -> None:
    """Delete expired idempotency records, at most every ``IDEMPOTENCY_GC_EVERY_S`` per storage root."""
    root = str(store.root)
    with _gc_lock:
        if now - _last_gc.get(root, 0.0) < IDEMPOTENCY_GC_EVERY_S:
            return
        _last_gc[root] = now
    for key, value in store.items("idem:").items():
        try:
            record = json.loads(value)
            expired = float(record.get("expires", record.get("until", 0))) < now
        except (ValueError, TypeError, AttributeError):
            expired = True
        if expired:
            store.delete_key(key)


def reserve(
    store: JobStore, settings: Any, *, kind: str, caller: Caller, idempotency: str | None, deadline: float
) -> Reservation:
    """Under the broker lock: the remembered answer for ``idempotency``, or the quotas checked and a place held.

    ``NoWorker`` (503) when live workers exist and none serves ``kind``;
    ``QueueFull`` (429) when the queue or the caller's share is full;
    ``IdempotencyConflict`` (409) while a request with the same key runs.
    """
    with BrokerLock(store).hold(deadline):
        now = time.time()
        _collect_idempotency(store, now)
        if idempotency is not None:
            claim = _read_json(store, idempotency)
            if claim is not None and claim.get("state") == "done" and float(claim.get("expires", 0)) > now:
                return Reservation(replay=claim)
            if claim is not None and claim.get("state") == "pending" and float(claim.get("until", 0)) > now:
                holder = store.get(str(claim.get("job", "")))
                if holder is not None and holder.state == RESERVED:
                    raise IdempotencyConflict(
                        f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry in a moment"
                    )
        if not accepts(store.workers(), kind):  # after the replay: a remembered 202 stays the answer
            raise NoWorker(no_worker_message(kind))
        jobs = store.all()
        live = []
        for job in jobs:
            if job.state == RESERVED and (job.lease_until or 0) < now:  # its request died: free its place
                store.forget(job.id)
                shutil.rmtree(store.job_dir(job.id), ignore_errors=True)
            else:
                live.append(job)
        waiting = sum(1 for j in live if j.state in ("queued", RESERVED))
        if waiting >= settings.max_queued_jobs:
            raise QueueFull(
                f"the job queue is full ({waiting} jobs waiting, limit {settings.max_queued_jobs}); retry later"
            )
        # The per-key quota needs keys: without them every caller is "anonymous" and only the server-wide limit
        # applies (one shared anonymous share would make max_jobs_per_key the global limit).
        if caller.keyed:
            mine = sum(1 for j in live if j.owner == caller.owner and j.state in (*ACTIVE, RESERVED))
            if mine >= settings.max_jobs_per_key:
                raise QueueFull(
                    f"this API key already has {mine} unfinished jobs (limit {settings.max_jobs_per_key}); "
                    "wait for one to finish or cancel one"
                )
        until = now + reservation_ttl(settings)
        job = Job(
            id=store.new_id(),
            kind=kind,
            state=RESERVED,
            style="",
            params={},
            created_at=now,
            input_name="",
            owner=caller.record_owner,
            lease_until=until,
        )
        store.put(job)
        if idempotency is not None:
            _write_json(store, idempotency, {"state": "pending", "job": job.id, "until": until})
        return Reservation(job.id, idempotency)


def release(store: JobStore, reservation: Reservation) -> None:
    """Give a reservation back (the request failed): its record, and its Idempotency-Key claim."""
    with contextlib.suppress(UserError):
        current = store.get(reservation.job_id)
        if current is not None and current.state == RESERVED:
            store.forget(reservation.job_id)
    if reservation.idempotency is not None:
        with contextlib.suppress(UserError):
            claim = _read_json(store, reservation.idempotency)
            if claim is not None and claim.get("job") == reservation.job_id and claim.get("state") == "pending":
                _delete(store, reservation.idempotency)


def _undo_commit(store: JobStore, reservation: Reservation) -> None:
    """A commit that finished after its request answered 503: take the job back (a queued message with no
    record is skipped by the worker)."""
    with contextlib.suppress(UserError):
        store.forget(reservation.job_id)
    shutil.rmtree(store.job_dir(reservation.job_id), ignore_errors=True)
    if reservation.idempotency is not None:
        with contextlib.suppress(UserError):
            claim = _read_json(store, reservation.idempotency)
            if claim is not None and claim.get("job") == reservation.job_id:
                _delete(store, reservation.idempotency)


# -- the submission -----------------------------------------------------------------------------------------
@dataclass
class Upload:
    """What a route's ``prepare`` gets: the saved upload in the job's folder."""

    request: Request
    caller: Caller
    store: JobStore
    job_id: str
    directory: Path
    path: Path
    saved: SavedUpload


@dataclass
class Prepared:
    """What a route's ``prepare`` returns: the job to enqueue (state ``queued``) and the 202 answer."""

    job: Job
    body: dict[str, Any]
    location: str
    check: Callable[[], None] | None = None  # under the lock, before the enqueue (a style name is still free)
    on_commit: Callable[[], None] | None = None  # under the lock, after the enqueue (record a style's owner)


@dataclass
class SubmitSpec:
    """One kind of submission: where its upload goes and how it becomes a job."""

    kind: str
    field_name: str
    limit: int
    raw_types: tuple[str, ...]
    upload_name: str
    prepare: Callable[[Upload], Awaitable[Prepared]]


def location(request: Request, path: str) -> str:
    """A Location for ``path``: under ``RESTYLE_PUBLIC_URL`` when set, else relative; never from the Host header."""
    path = request.scope.get("root_path", "") + path
    return request.app.state.settings.public_url + path


def _commit(store: JobStore, reservation: Reservation, prepared: Prepared, settings: Any, deadline: float) -> None:
    job = prepared.job
    with BrokerLock(store).hold(deadline):
        current = store.get(job.id)
        # A reservation past its lease may be removed by any submit or sweep at any moment: never commit one.
        if current is None or current.state != RESERVED or (current.lease_until or 0) < time.time():
            raise BrokerBusy("this request's place in the queue expired while it was processed; submit it again")
        if prepared.check is not None:
            prepared.check()
        try:
            store.enqueue(job)  # the record becomes "queued" (delivery 1) and the message is sent
            if prepared.on_commit is not None:
                prepared.on_commit()
            if reservation.idempotency is not None:
                now = time.time()
                _write_json(
                    store,
                    reservation.idempotency,
                    {
                        "state": "done",
                        "job": job.id,
                        "status": 202,
                        "body": prepared.body,
                        "location": prepared.location,
                        "created": now,
                        "expires": now + settings.idempotency_ttl,
                    },
                )
        except BaseException:
            with contextlib.suppress(UserError):
                store.forget(job.id)  # a message without a record is skipped by the worker
            raise


def _replay(claim: dict[str, Any]) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if claim.get("location"):
        headers["Location"] = str(claim["location"])
    return JSONResponse(claim.get("body"), status_code=int(claim.get("status", 202)), headers=headers)


class SubmitQueue(Protocol):
    """What ``submit`` needs of the API's job queue: ``restyle.api.jobs.JobQueue``, which imports this module."""

    settings: Settings

    @property
    def store(self) -> JobStore: ...

    def check_storage(self, incoming: int) -> None: ...


async def submit(request: Request, jobs: SubmitQueue, caller: Caller, spec: SubmitSpec) -> JSONResponse:
    """Reserve a place (or replay the first answer), read the upload, let the route prepare the job, commit it."""
    settings = jobs.settings
    timeout = settings.broker_timeout
    owner = caller.record_owner
    idempotency = idempotency_key(request, owner, spec.kind)
    # Opening the queue (once per process: imports, SQLite schema) may take longer than one broker call.
    store = await bounded(lambda: jobs.store, max(timeout, OPEN_TIMEOUT_S), what="the job queue (opening it)")

    def reserve_now() -> Reservation:
        deadline = time.monotonic() + timeout
        return reserve(store, settings, kind=spec.kind, caller=caller, idempotency=idempotency, deadline=deadline)

    def give_back(reservation: Reservation) -> None:  # a reservation made after its request answered 503
        if reservation.replay is None:
            release(store, reservation)

    reservation = await bounded(reserve_now, timeout, undo=give_back)
    if reservation.replay is not None:
        return _replay(reservation.replay)
    directory = store.job_dir(reservation.job_id)
    try:
        await to_thread.run_sync(jobs.check_storage, declared_length(request) or 0)  # 507 before a byte is read
        await to_thread.run_sync(lambda: directory.mkdir(parents=True))
        path = directory / spec.upload_name
        saved = await save_upload(request, path, field_name=spec.field_name, limit=spec.limit, raw_types=spec.raw_types)
        await to_thread.run_sync(jobs.check_storage, 0)  # the upload itself may have filled the disk
        prepared = await spec.prepare(Upload(request, caller, store, reservation.job_id, directory, path, saved))
        if prepared.job.id != reservation.job_id or prepared.job.state != "queued":
            raise RuntimeError("prepare must return the reserved job, queued")
        await bounded(
            lambda: _commit(store, reservation, prepared, settings, time.monotonic() + timeout),
            timeout,
            undo=lambda _: _undo_commit(store, reservation),
        )
    except BaseException as exc:
        # Give the place back before answering, so a retry is not refused by this request's own reservation;
        # when the broker is the problem (or the request is being cancelled) do it in the background.
        if isinstance(exc, Exception) and not isinstance(exc, QueueUnavailable):
            await to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))
            with contextlib.suppress(QueueUnavailable):
                await bounded(lambda: release(store, reservation), timeout)
        else:

            def clean_up() -> None:
                shutil.rmtree(directory, ignore_errors=True)
                release(store, reservation)

            threading.Thread(target=clean_up, name="restyle-release", daemon=True).start()
        raise
    return JSONResponse(prepared.body, status_code=202, headers={"Location": prepared.location})
