"""Running jobs: each task's run (``run_delivery``), its lease and cancel watch, the sweeper, the worker service.

Two kinds share all of it: ``video`` (``POST /v1/jobs/video``, ``restyle.jobs.tasks.video``) and ``style``
(``POST /v1/styles``: ``restyle train --add-style`` as a job, ``restyle.jobs.tasks.style``).

A job runs in a worker *process* (``restyle worker``, or the one ``restyle
serve`` starts beside the API), never in the API: decoding a hostile video
can take gigabytes, and an out-of-memory kill must cost one job attempt, not
the API. Huey's consumer restarts a worker process that died. A worker
serves some job kinds (``--kinds``; by default what its install can run,
``restyle.jobs.kinds``): it reads only their queues, imports only their code,
and its heartbeat names them, so a CPU pool for video and a GPU pool for
training share one broker. The sweep is every worker's, whatever its kinds.

Per run, a watcher thread renews the job's lease and checks for a cancel
request; the job's own ``cancel`` event (never a shared one: see
``restyle.video.pipeline``) stops the pipeline. Outcomes:

* success: ``succeeded``; the result was written atomically (``restyle.atomic``);
* a user-caused failure (corrupt video...): ``failed`` with one clear line, no retry;
* a cancel request: ``cancelled``;
* worker shutdown (SIGTERM, or ``stop()``): back to ``queued``, the attempt given back;
* a bug: retried up to ``job_attempts`` runs, then ``failed`` with "internal error";
* the worker killed (``kill -9``, OOM): the lease runs out, a sweeper requeues the
  job (up to ``job_attempts`` runs), and any worker picks it up;
* its queue message lost (taken by a process that died before claiming it, or never written):
  a sweeper that finds a ``queued`` job with no message for ``RESTYLE_JOB_LOST_GRACE`` enqueues it again;
* a reservation whose API process died mid-upload (``reserved`` past its lease): the sweep removes it
  and its folder, so it holds no quota.

Every process of ``restyle worker`` dies with its parent: the Huey worker processes and the
housekeeper ask Linux for SIGTERM when their parent dies (``PR_SET_PDEATHSIG``, with a parent-pid
watchdog elsewhere), and SIGTERM stops an idle one at once and requeues a running job. ``restyle
serve`` passes ``--parent-pid`` so that its worker follows it the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from typing import Any

from huey import Huey
from huey.consumer import Consumer, ProcessEnvironment, Scheduler, Worker

from restyle.errors import UserError, missing_extra, scrub
from restyle.jobs.kinds import KINDS, installed_kinds, kinds_text
from restyle.jobs.store import (
    ACTIVE,
    BROKER_ERRORS,
    FINISHED,
    RESERVED,
    STYLE_OWNER_PREFIX,
    STYLE_USED_PREFIX,
    Job,
    JobStore,
    QueueUnavailable,
    describe_broker,
    heartbeat_every,
    make_huey,
    style_use_record_every,
    worker_id,
)
from restyle.settings import Settings

log = logging.getLogger("restyle.jobs")

_PROGRESS_EVERY_S = 0.5
PICKUP_POLL_S = 0.1
_CANCEL_POLL_S = 0.25
# A queued job whose message has been missing from the queue this long is enqueued again (the default of
# ``RESTYLE_JOB_LOST_GRACE``). Taking a message and claiming it (which turns the job ``running``) are
# milliseconds apart, so this only catches real losses.
LOST_MESSAGE_GRACE_S = 30.0
# A reservation (``reserved``: a place in the quotas while its upload arrives) whose lease ended this long ago is
# removed by the sweep; the API's own submits remove expired ones too, and never commit one past its lease.
RESERVATION_SWEEP_MARGIN_S = 60.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PARENT_POLL_S = 1.0


def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Have ``sig`` sent to this process when its parent ``parent`` is gone, even killed with SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG)`` (the kernel signals us when the parent thread that started us
    exits); elsewhere, or if that fails, a watchdog thread that signals us once ``os.getppid()`` changes.
    A parent that died before the prctl is caught by the check right after it.
    """
    armed = False
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the watchdog below
        armed = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
        return
    if armed:
        return

    def watch() -> None:  # pragma: no cover - only where prctl is missing
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_S)
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _styles(huey: Huey, settings: Settings) -> Any:
    """The style catalogue and its model sessions, built once per worker process (after the fork)."""
    ctx: dict[str, Any] = huey.restyle_context  # type: ignore[attr-defined]
    if "styles" not in ctx:
        from restyle.runtime.service import StyleService

        ctx["styles"] = StyleService(settings)
    return ctx["styles"]


class _Run:
    """One delivery of one job in this process: its record, lease, progress and cancel event."""

    def __init__(self, store: JobStore, job: Job, lease: float, stopping: threading.Event):
        self.store = store
        self.job = job
        self.lease = lease
        self.stopping = stopping
        self.cancel = threading.Event()
        self.reason = ""  # "cancelled" or "shutdown" once cancel is set
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.superseded = False
        self._last_progress = 0.0

    def save(self, **changes: Any) -> None:
        """Write the record, unless a sweeper gave this job to another worker meanwhile."""
        with self.lock:
            for key, value in changes.items():
                setattr(self.job, key, value)
            current = self.store.get(self.job.id)
            if current is None or current.delivery != self.job.delivery:
                self.superseded = True
                self.cancel.set()
                self.reason = self.reason or "superseded"
                return
            self.store.put(self.job)

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_progress >= _PROGRESS_EVERY_S or done == total:
            self._last_progress = now
            with contextlib.suppress(QueueUnavailable):  # best effort; the lease watcher reports an outage
                self.save(frames_done=done, frames_total=total)

    def watch(self) -> None:
        """Look for cancel requests (4x a second: a cheap read) and renew the lease until the run ends."""
        renew_every = min(1.0, self.lease / 4)
        renewed = time.monotonic()
        while not self.done.wait(_CANCEL_POLL_S):
            try:
                if self.stopping.is_set():
                    self.reason = self.reason or "shutdown"
                    self.cancel.set()
                elif self.store.cancel_requested(self.job.id):
                    self.reason = self.reason or "cancelled"
                    self.cancel.set()
                if time.monotonic() - renewed >= renew_every:
                    renewed = time.monotonic()
                    self.save(lease_until=time.time() + self.lease)
            except QueueUnavailable as exc:
                log.warning("job %s: cannot renew the lease: %s", self.job.id, exc)


def run_delivery(huey: Huey, settings: Settings, job_id: str, delivery: int) -> None:
    """The Huey task: run delivery ``delivery`` of job ``job_id`` at most once, wherever it lands."""
    store = JobStore(huey, settings)
    if not store.once(f"claim:{job_id}:{delivery}"):
        log.info("job %s delivery %d already claimed; skipped", job_id, delivery)
        return
    job = store.get(job_id)
    if job is None or job.delivery != delivery or job.state != "queued":
        return  # cancelled while queued, expired, or superseded by a later delivery
    now = time.time()
    if store.cancel_requested(job_id):
        job.state, job.finished_at, job.error = "cancelled", now, "cancelled before it started"
        store.put(job)
        _remove_files(store, job, keep_result=False)
        return
    if job.attempts >= settings.job_attempts:
        _give_up(store, job, settings)
        return
    job.state, job.attempts, job.worker = "running", job.attempts + 1, worker_id()
    job.started_at, job.lease_until, job.frames_done = now, now + settings.job_lease, 0
    store.put(job)
    run = _Run(store, job, settings.job_lease, huey.restyle_stopping)  # type: ignore[attr-defined]
    watcher = threading.Thread(target=run.watch, name=f"job-{job_id[:8]}-lease", daemon=True)
    watcher.start()
    try:
        _execute(huey, settings, store, run)
    except KeyboardInterrupt:  # Huey's process worker got SIGTERM mid-job: requeue it, then let Huey stop
        run.done.set()
        _requeue_after_shutdown(store, run)
        raise
    finally:
        run.done.set()


# Files a finished job keeps for its retention period (everything else in its folder is deleted).
KEPT_FILES = {"video": ("result.mp4",), "style": ("preview.png",)}


def _run_kind(huey: Huey, settings: Settings, store: JobStore, run: _Run) -> int:
    """Run the job's own work with its cancel event and progress callback; returns the units done.

    Each kind has its own module (video: ``restyle.jobs.tasks.video``, new
    styles: ``restyle.jobs.tasks.style``); both raise ``UserError`` for what the
    input is to blame for and ``Cancelled`` once the cancel event stopped them.
    """
    job = run.job
    if job.kind == "video":
        from restyle.jobs.tasks.video import run_video_job

        return run_video_job(job, store, _styles(huey, settings), settings, run.cancel, run.progress)
    if job.kind == "style":
        from restyle.jobs.tasks.style import run_style_job

        try:
            return run_style_job(job, store, _styles(huey, settings), settings, run.cancel, run.progress)
        except ModuleNotFoundError as exc:  # a worker without the `train` extra: one line, not a retried "bug"
            missing = missing_extra(exc, "train")
            if missing is None:
                raise
            raise missing from None
    raise UserError(f"unknown job kind {job.kind!r}")


def _execute(huey: Huey, settings: Settings, store: JobStore, run: _Run) -> None:
    from restyle.errors import Cancelled

    job = run.job
    for stale in store.job_dir(job.id).glob(".result.*"):  # a temporary output of a run that was killed
        stale.unlink(missing_ok=True)
    try:
        frames = _run_kind(huey, settings, store, run)
    except Cancelled:
        run.done.set()
        if not run.reason and store.cancel_requested(job.id):  # seen by the job itself before the watcher
            run.reason = "cancelled"
        if run.reason == "shutdown":
            _requeue_after_shutdown(store, run)
        elif run.reason == "cancelled":
            _remove_files(store, job, keep_result=False)  # before the final state, as for "succeeded" below
            run.save(state="cancelled", finished_at=time.time(), error="cancelled on request", lease_until=None)
        else:
            log.info("job %s was given to another worker; this run stopped", job.id)
        return
    except UserError as exc:
        run.done.set()
        _remove_files(store, job, keep_result=False)
        run.save(state="failed", finished_at=time.time(), error=scrub(str(exc)), lease_until=None)
        log.info("job %s failed: %s", job.id, scrub(str(exc)))
        return
    except BROKER_ERRORS:
        raise  # the broker is gone: the lease runs out and the job is retried when it is back
    except Exception:  # noqa: BLE001 - a bug fails (or retries) this job only; details go to the log
        run.done.set()
        log.exception("job %s: internal error on attempt %d", job.id, job.attempts)
        if job.attempts < settings.job_attempts:
            run.save(error="internal error; retrying", lease_until=None)
            if not run.superseded:
                store.enqueue(job)
        else:
            _remove_files(store, job, keep_result=False)
            run.save(state="failed", finished_at=time.time(), error="internal error", lease_until=None)
        return
    run.done.set()
    # Tidy the folder *before* saying "succeeded": a client that lists the job's files as soon as it sees the
    # state must find only what a finished job keeps (no input, no run/ folder). Not if the job was given to
    # another worker meanwhile (a lease that ran out): that run needs its input.
    current = store.get(job.id)
    if current is None or current.delivery != job.delivery:
        run.superseded = True
        log.info("job %s was given to another worker; this run's result is left to it", job.id)
        return
    _remove_files(store, job, keep_result=True)
    size = sum(
        path.stat().st_size for name in KEPT_FILES.get(job.kind, ()) if (path := store.job_dir(job.id) / name).is_file()
    )
    run.save(
        state="succeeded",
        frames_done=frames,
        frames_total=frames,
        finished_at=time.time(),
        result_bytes=size,
        error=None,
        lease_until=None,
    )
    if not run.superseded:
        unit = "steps" if job.kind == "style" else "frames"
        log.info("job %s succeeded: %d %s in %.1f s", job.id, frames, unit, time.time() - (job.started_at or 0))


def _requeue_after_shutdown(store: JobStore, run: _Run) -> None:
    """A stopping worker hands its job back: not the job's fault, so the attempt does not count."""
    try:
        current = store.get(run.job.id)
        if current is None or current.delivery != run.job.delivery or current.state != "running":
            return
        current.attempts = max(0, current.attempts - 1)
        current.frames_done = 0
        store.enqueue(current)
        log.warning("job %s requeued: its worker is shutting down", run.job.id)
    except QueueUnavailable as exc:  # the lease will run out and a sweeper requeues it instead
        log.warning("job %s: could not requeue at shutdown (%s); the lease will expire", run.job.id, exc)


def _give_up(store: JobStore, job: Job, settings: Settings) -> None:
    job.state, job.finished_at, job.lease_until = "failed", time.time(), None
    job.error = f"the worker running this job stopped {job.attempts} times (killed or out of memory); " + (
        "try fewer steps" if job.kind == "style" else "try a shorter or smaller video"
    )
    _remove_files(store, job, keep_result=False)  # before the final state: a client that sees it finds no files
    store.put(job)
    log.warning("job %s failed after %d attempts", job.id, job.attempts)


def _remove_files(store: JobStore, job: Job, keep_result: bool) -> None:
    """Delete a finished job's files: all of them, or all but its ``KEPT_FILES`` (input, temporaries, run folder)."""
    directory = store.job_dir(job.id)
    if not keep_result:
        shutil.rmtree(directory, ignore_errors=True)
        return
    kept = KEPT_FILES.get(job.kind, ())
    for entry in list(directory.iterdir()) if directory.is_dir() else []:
        if entry.name in kept:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def sweep(
    store: JobStore, settings: Settings, now: float | None = None, lost_grace: float | None = None
) -> dict[str, int]:
    """Requeue jobs whose lease ran out (their worker died) or whose queue message was lost; remove stale
    reservations; expire and forget old finished jobs.

    Safe to run in every worker service at once: a ``put_if_empty`` key per
    (job, delivery) lets exactly one of them act on each expired lease or lost message.
    ``lost_grace``: default ``settings.job_lost_grace``.
    """
    now = time.time() if now is None else now
    counts = {"requeued": 0, "gave_up": 0, "expired": 0, "forgotten": 0, "lost": 0, "reservations": 0, "styles": 0}
    jobs = store.all()
    grace = settings.job_lost_grace if lost_grace is None else lost_grace
    counts["lost"] = _requeue_lost_messages(store, [j for j in jobs if j.state == "queued"], now, grace)
    counts["reservations"] = _remove_stale_reservations(store, [j for j in jobs if j.state == RESERVED], now)
    for job in jobs:
        if job.state == "running" and job.lease_until is not None and job.lease_until < now:
            if not store.once(f"sweep:{job.id}:{job.delivery}"):
                continue
            if job.attempts >= settings.job_attempts:
                _give_up(store, job, settings)
                counts["gave_up"] += 1
            else:
                log.warning(
                    "job %s: worker %s went silent (lease expired); requeued (attempt %d of %d done)",
                    job.id,
                    job.worker,
                    job.attempts,
                    settings.job_attempts,
                )
                job.frames_done = 0
                store.enqueue(job)
                counts["requeued"] += 1
        elif job.state in FINISHED and job.finished_at and job.finished_at < now - settings.video_retention:
            shutil.rmtree(store.job_dir(job.id), ignore_errors=True)
            job.state = "expired"
            store.put(job)
            counts["expired"] += 1
        elif job.state == "expired" and job.finished_at and job.finished_at < now - 7 * settings.video_retention:
            store.forget(job.id)
            counts["forgotten"] += 1
    counts["styles"] = _expire_styles(store, settings, jobs, now)
    return counts


def _mtime(path: Any) -> float:
    try:
        return float(path.stat().st_mtime)
    except OSError:
        return 0.0


def _expire_styles(store: JobStore, settings: Settings, jobs: list[Job], now: float) -> int:
    """Delete the user styles made through the API (those with a ``style-owner:`` record) that nobody used for
    ``style_retention`` seconds: model, card, owner and use records, training jobs. Bundled styles and models
    the operator put into the folder have no owner record and never expire; a style in training is kept.

    Last use: the newest of its recorded use (``style-used:NAME``, written by the photo routes), its video
    jobs still on record (written to ``style-used:`` here, so it outlives those records), its training and
    its model file's install time.
    """
    from restyle.runtime.registry import remove_model, valid_name

    retention = settings.style_retention
    if retention <= 0:
        return 0
    owners = store.items(STYLE_OWNER_PREFIX)
    if not owners:
        return 0
    used = store.style_uses()
    training = {j.style for j in jobs if j.kind == "style" and j.state in ACTIVE}
    trained: dict[str, float] = {}
    videos: dict[str, float] = {}
    for job in jobs:
        if job.kind == "style":
            trained[job.style] = max(trained.get(job.style, 0.0), job.finished_at or job.created_at)
        elif job.kind == "video" and job.state != RESERVED:
            model = job.style.split(":", 1)[0]
            videos[model] = max(videos.get(model, 0.0), job.created_at)
    every = style_use_record_every(settings)
    user_dir = settings.user_models_dir
    removed = 0
    for key, record in owners.items():
        name = key.removeprefix(STYLE_OWNER_PREFIX)
        if not valid_name(name) or name in training:
            continue
        video = videos.get(name, 0.0)
        if video > used.get(name, 0.0) + every:
            store.record_style_use(name, video)
            used[name] = video
        try:
            owner_record = json.loads(record)
            made = float(owner_record.get("at", 0.0))
        except (ValueError, TypeError, AttributeError):
            owner_record, made = None, 0.0
        last = max(made, used.get(name, 0.0), video, trained.get(name, 0.0), _mtime(user_dir / f"{name}.onnx"))
        if last >= now - retention:
            continue
        # Read again just before deleting: a use, a DELETE or a new training of the name may have come meanwhile.
        use = store.read_json(f"{STYLE_USED_PREFIX}{name}") or {}
        if store.read_json(key) != owner_record or float(use.get("at", 0.0)) > used.get(name, 0.0):
            continue
        remove_model(user_dir, name)
        store.delete_key(f"{STYLE_USED_PREFIX}{name}")
        store.delete_key(key)
        for job in jobs:
            if job.kind == "style" and job.style == name:
                shutil.rmtree(store.job_dir(job.id), ignore_errors=True)
                store.forget(job.id)
        log.info("style %r expired (unused since %s); deleted", name, time.strftime("%Y-%m-%d", time.gmtime(last)))
        removed += 1
    return removed


def _remove_stale_reservations(store: JobStore, reserved: list[Job], now: float) -> int:
    """Remove ``reserved`` records (and their folders) whose lease ended ``RESERVATION_SWEEP_MARGIN_S`` ago.

    A reservation lives while its request uploads; one whose API process was killed mid-upload would hold
    its quota place until the next submit cleaned it up. The API never commits a reservation past its lease
    and the margin is far longer than a commit, so a record read again as still ``reserved`` here is dead.
    """
    removed = 0
    for job in reserved:
        if job.lease_until is None or job.lease_until + RESERVATION_SWEEP_MARGIN_S >= now:
            continue
        current = store.get(job.id)
        if current is None or current.state != RESERVED or current.lease_until != job.lease_until:
            continue
        store.forget(job.id)
        shutil.rmtree(store.job_dir(job.id), ignore_errors=True)
        log.info("reservation %s expired (its request never finished); removed", job.id)
        removed += 1
    return removed


def _requeue_lost_messages(store: JobStore, queued: list[Job], now: float, grace: float) -> int:
    """Enqueue again the ``queued`` jobs whose current delivery has had no message on the queue for ``grace``.

    Huey deletes a message when a worker takes it; a worker killed between taking it and claiming the
    job (or an API killed between saving the record and enqueueing) leaves the job ``queued`` with no
    message: nobody would ever run it, and it would hold its quota slot and its input forever. A job
    missing from one look may simply be in a worker's hands for a moment, so it is requeued only once
    this process has seen it missing for ``grace`` seconds. The new delivery number makes a late claim
    of the old message a no-op, and a ``put_if_empty`` key lets one sweeper act.
    """
    if not queued:
        store.missing_since.clear()
        return 0
    pending = store.pending_deliveries()
    missing: dict[tuple[str, int], float] = {}
    requeued = 0
    for job in queued:
        key = (job.id, job.delivery)
        if key in pending:
            continue
        first = store.missing_since.get(key, now)
        if now - first < grace:
            missing[key] = first
            continue
        if not store.once(f"lost:{job.id}:{job.delivery}"):
            continue
        current = store.get(job.id)  # a worker may have claimed it meanwhile
        if current is None or current.state != "queued" or current.delivery != job.delivery:
            continue
        log.warning("job %s: its queue message (delivery %d) was lost; enqueued again", job.id, job.delivery)
        store.enqueue(current)
        requeued += 1
    store.missing_since = missing
    return requeued


class WorkerService:
    """Workers for one machine: Huey's consumer (processes) for ``restyle worker``, or threads for tests.

    ``kinds``: the job kinds these workers take (their queues; default: what this install can run, see
    ``restyle.jobs.kinds``). Besides the workers, a housekeeping thread says "alive" with those kinds (for
    ``/readyz`` and the API's refusal of a kind nobody serves) and sweeps expired leases, lost messages and
    old jobs of every kind every few seconds.
    """

    def __init__(self, settings: Settings, processes: int = 1, kinds: tuple[str, ...] | None = None):
        self.settings = settings
        self.processes = processes
        self.kinds = installed_kinds() if kinds is None else tuple(kinds)
        self.name = f"{worker_id()}"
        self.huey = make_huey(settings, run=run_delivery, kinds=self.kinds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.interval = min(5.0, settings.job_lease / 3)

    # -- housekeeping ---------------------------------------------------------------------------------
    def housekeeping(self) -> None:
        housekeep(self.settings, self.name, self.processes, self._stop, kinds=self.kinds)

    # -- threads (tests; one process) -------------------------------------------------------------
    def start_threads(self) -> None:
        """Run ``processes`` worker *threads* in this process plus housekeeping; ``stop()`` ends them."""
        self._stop.clear()
        self.huey.restyle_stopping.clear()  # type: ignore[attr-defined]
        for i in range(self.processes):
            t = threading.Thread(target=self._thread_loop, name=f"job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self.housekeeping, name="job-housekeeping", daemon=True)
        t.start()
        self._threads.append(t)

    def _thread_loop(self) -> None:
        while not self._stop.is_set():
            try:
                task = self.huey.dequeue()
            except BROKER_ERRORS as exc:
                log.warning("cannot read the job queue: %s", exc)
                self._stop.wait(1.0)
                continue
            if task is None:
                self._stop.wait(0.05)
                continue
            try:
                self.huey.execute(task)
            except Exception:  # noqa: BLE001 - Huey logs task errors; the loop must go on
                log.exception("job task crashed")

    def stop(self, timeout: float = 30.0) -> None:
        """Requeue running jobs and stop (the graceful shutdown of a worker)."""
        self.huey.restyle_stopping.set()  # type: ignore[attr-defined]
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    # -- processes (`restyle worker`) -------------------------------------------------------------
    def run(self) -> None:
        """Huey's consumer with ``processes`` worker processes, until SIGTERM (requeue running jobs) or SIGINT."""
        huey = self.huey

        @huey.on_startup()
        def _fresh_connections() -> None:
            # A forked child must not reuse the parent's SQLite connection or a lock some thread held at fork.
            storage = huey.storage
            if hasattr(storage, "_conn"):
                storage._conn = None
                storage.lock = threading.Lock()

        close = getattr(huey.storage, "close", None)
        if close is not None:
            close()  # SQLite: no connection may cross the fork into the worker processes (locks break)

        consumer = _Consumer(
            huey,
            workers=self.processes,
            worker_type="process",
            periodic=False,
            # An idle worker polls the queue every 0.1 s (a SQLite read, ~0.1 ms): a job waits at most that
            # long to start. Huey's default backs off to 10 s; 0.5 s cost 0.25 s per job on average.
            max_delay=PICKUP_POLL_S,
            check_worker_health=True,
            health_check_interval=1,
        )
        # Housekeeping runs in a *spawned* process: an SQLite connection open in this process when Huey
        # forks (or re-forks) a worker would poison SQLite's lock state in the child ("database is locked").
        ctx = multiprocessing.get_context("spawn")
        keeper = ctx.Process(
            target=housekeep,
            args=(self.settings, self.name, self.processes, None, os.getpid()),
            kwargs={"kinds": self.kinds},
            name="job-housekeeping",
            daemon=True,
        )
        keeper.start()
        log.info(
            "restyle worker %s: %d process(es) for %s jobs on %s",
            self.name,
            self.processes,
            kinds_text(self.kinds),
            _describe(self.settings),
        )
        # After the housekeeper's start: its "alive" mark does not wait for torch to load.
        _preload_job_code(self.kinds)
        try:
            consumer.run()
        finally:
            _reap(consumer)
            keeper.terminate()  # stateless: its "alive" mark expires by itself
            keeper.join(5)
            if keeper.is_alive():
                keeper.kill()


def _preload_job_code(kinds: tuple[str, ...]) -> None:
    """Import what the served ``kinds`` run (video: PyAV, ONNX Runtime; style: PyTorch and the training
    stack) once, before Huey forks; a video-only worker never imports torch (an install may lack it).

    Every worker process, and every one Huey restarts, then starts with it
    loaded (shared copy-on-write). Imported inside a job instead, torch takes
    seconds with the GIL held (over 20 s on a loaded 2-core machine), which
    stalls the thread that renews the job's lease: the lease runs out and
    the job is handed to another worker for nothing.

    A worker serves only the kinds its install can run (``restyle.jobs.kinds``): a serving install without
    the ``train`` extra loads the video stack alone.
    """
    if "video" in kinds:
        import restyle.jobs.tasks.video
        import restyle.video.stylize  # noqa: F401
    if "style" in kinds:
        import torchvision.utils  # noqa: F401  (the sample grids)

        import restyle.export.onnx_export
        import restyle.train.add_style
        import restyle.train.loop  # noqa: F401


def housekeep(
    settings: Settings,
    name: str,
    processes: int,
    stop: threading.Event | None,
    parent: int = 0,
    *,
    kinds: tuple[str, ...] = KINDS,
) -> None:
    """Say "alive" (with the ``kinds`` served) every ``heartbeat_every`` seconds, for ``/readyz`` and the
    API's check that a submitted kind has a worker, and sweep expired leases, lost messages and old jobs
    every few seconds.

    Until ``stop`` is set (threads), or, as its own process, until SIGTERM or its ``parent`` is gone (it
    asks for SIGTERM when the parent dies). It takes its "alive" mark away on the way out, so ``/readyz``
    knows at once. (No multiprocessing Event: one whose waiter was killed can block ``set()`` forever.)"""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    terminated: list[int] = []
    if parent:
        # A flag, not an exception: a SIGTERM must not cut a requeue between its record and its message.
        signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
        die_with_parent(parent)

    def running() -> bool:
        if stop is not None:
            return not stop.is_set()
        return not terminated and os.getppid() == parent

    store = JobStore(make_huey(settings, run=run_delivery), settings)
    interval = min(5.0, settings.job_lease / 3)
    next_beat = next_sweep = time.monotonic()
    try:
        while running():
            now = time.monotonic()
            try:
                if now >= next_beat:
                    next_beat = now + heartbeat_every(settings)
                    store.worker_alive(name, processes, kinds)
                if now >= next_sweep:
                    next_sweep = now + interval
                    counts = sweep(store, settings)
                    if any(counts.values()):
                        log.info("sweep: %s", counts)
            except QueueUnavailable as exc:
                log.warning("%s", exc)
            except Exception:  # noqa: BLE001 - housekeeping must outlive any one bad record
                log.exception("job sweep failed")
            pause = max(0.0, min(next_beat, next_sweep) - time.monotonic())
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(min(pause, 0.5))  # wakes up for a SIGTERM within half a second
    finally:
        with contextlib.suppress(QueueUnavailable):
            store.worker_gone(name)


class _IdleScheduler(Scheduler):
    """Huey's scheduler process moves delayed tasks to the queue every second: a write transaction per
    second on SQLite. Jobs are never delayed (retries go through the lease sweep), so it only idles."""

    def loop(self, now: Any = None) -> None:
        self.stop_flag.wait(1.0)


# Set in a Huey worker process once it got SIGTERM: it takes no further message and exits.
_TERMINATING = threading.Event()


class _Worker(Worker):
    """Huey's worker loop, which also stops (between messages, never inside a queue read) after SIGTERM."""

    def loop(self, now: Any = None) -> None:
        if _TERMINATING.is_set():
            raise KeyboardInterrupt  # Huey's process wrapper: run the shutdown hooks and exit
        super().loop(now)


class _ProcessEnvironment(ProcessEnvironment):
    """Huey's process workers, made to die with the ``restyle worker`` that forked them.

    Huey's own children answer SIGTERM only while a task runs and otherwise wait for a stop flag that
    only their parent sets: once the parent was killed (``kill -9``, OOM) they went on taking jobs as
    orphans, with no housekeeper, and only SIGKILL ended them. Here each child asks for SIGTERM when its
    parent dies, and SIGTERM always ends it: a running job is interrupted and requeued (the attempt
    given back), an idle worker or the scheduler exits at once.
    """

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.parent = os.getpid()  # the consumer: it builds the environment, then forks every child

    def init_child(self, process: Any) -> None:
        super().init_child(process)
        huey = process.huey

        def interrupt(signum: int, frame: Any) -> None:
            _TERMINATING.set()
            stopping = getattr(huey, "restyle_stopping", None)
            if stopping is not None:
                stopping.set()  # a job taken in the meantime hands itself back (its watcher sees this)
            if huey._tasks_in_flight or not isinstance(process, Worker):
                raise KeyboardInterrupt  # Huey's own reaction: the job requeues itself, then the process exits

        signal.signal(self.interrupt, interrupt)
        try:
            die_with_parent(self.parent, self.interrupt)
        except KeyboardInterrupt:  # the parent died before this child started: nothing to hand back
            os._exit(0)


class _Consumer(Consumer):
    scheduler_class = _IdleScheduler
    worker_class = _Worker

    def get_environment(self, worker_type: str) -> Any:
        if worker_type == "process":
            return _ProcessEnvironment(self._graceful_sig, self._interrupt_sig)
        return super().get_environment(worker_type)


def _reap(consumer: Any, grace: float = 10.0) -> None:
    """Bound the shutdown: Huey already interrupted the job processes (they requeue their jobs); give them
    ``grace`` seconds, then kill what is left (a process stuck on a busy SQLite file would otherwise keep
    the whole worker from exiting, and multiprocessing's exit handler would wait for it forever)."""
    procs = [p for _, p in consumer.worker_threads] + [consumer.scheduler]
    deadline = time.monotonic() + grace
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            log.warning("worker process %s did not stop in %.0f s; killed", proc.pid, grace)
            proc.kill()
            proc.join(1)


def _describe(settings: Settings) -> str:
    return f"{describe_broker(settings)}, files under {settings.storage_root}"
