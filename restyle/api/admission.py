"""Admission control: a bounded inference pool, a bounded wait queue and per-request deadlines.

Why this shape:

* **Off the event loop.** Inference is seconds of CPU inside ONNX Runtime
  (which releases the GIL); running it in a thread pool keeps the loop free
  to answer ``/healthz``, ``/metrics`` and rejections instantly.
* **Bounded everything.** A ``ThreadPoolExecutor`` queues without limit, so
  we count admissions ourselves: at most ``pool_size`` running plus
  ``queue_size`` waiting. Beyond that a request is refused *at once* with
  429 and a ``Retry-After`` estimate, instead of joining a backlog that
  would only time out later while holding its upload in memory.
* **Deadlines.** Each request carries an absolute deadline (queue wait plus
  inference). When it passes the client gets 503; a job still in the queue
  is cancelled and never runs, and a job that already started is allowed
  to finish (a native call cannot be interrupted) but keeps its slot until
  it does, so the bound on concurrent work stays true.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from restyle.api.metrics import Metrics
from restyle.errors import UserError

T = TypeVar("T")


class Overloaded(UserError):
    """Every pool slot and queue place is taken: come back later (429 + Retry-After)."""

    http_status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(UserError):
    """The request's deadline passed while it waited or ran (503)."""

    http_status = 503

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class ClientGone(UserError):
    """The client hung up while its request was queued; nobody reads the answer (499, as nginx logs it)."""

    http_status = 499


DISCONNECT_POLL_S = 0.2  # how often a queued request checks that its client is still there


class _Slot:
    """One admitted job; ``started`` tells the release callback whether it still counts as waiting."""

    __slots__ = ("started", "used")

    def __init__(self) -> None:
        self.started = False
        self.used = False  # handed to run(); run's completion releases it


class Admission:
    """Runs blocking callables in a pool of ``pool_size`` threads with ``queue_size`` waiting places."""

    def __init__(
        self,
        pool_size: int,
        queue_size: int,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: what deadlines are measured on (``time.monotonic``; a test's fake clock moves them at will)."""
        if pool_size < 1 or queue_size < 0:
            raise ValueError("pool_size >= 1 and queue_size >= 0")
        self.pool_size = pool_size
        self.queue_size = queue_size
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="restyle-infer")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting, released only when the work has really ended
        self._waiting = 0
        self._service_s = 0.5  # running mean of one job's duration, for Retry-After
        self._closed = False

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def admitted(self) -> int:
        return self._admitted

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead of us divided among the pool."""
        with self._lock:
            ahead = self._waiting + 1
            service = self._service_s
        return max(1, math.ceil(ahead * service / self.pool_size))

    def _admit(self) -> _Slot:
        with self._lock:
            if self._closed:
                raise DeadlineExceeded("the server is shutting down")
            if self._admitted >= self.pool_size + self.queue_size:
                full = True
            else:
                full = False
                self._admitted += 1
                self._waiting += 1
                self.metrics.queue_depth.set(self._waiting)
        if full:
            self.metrics.rejections.labels("queue_full").inc()
            raise Overloaded(
                f"the server is at capacity ({self.pool_size} running, {self.queue_size} waiting); retry later",
                self.retry_after(),
            )
        return _Slot()

    def _release(self, slot: _Slot, _future: Future) -> None:
        with self._lock:
            self._admitted -= 1
            if not slot.started:  # cancelled while still queued
                self._waiting -= 1
            self.metrics.queue_depth.set(self._waiting)

    def _start(self, slot: _Slot, enqueued: float, deadline: float) -> bool:
        """Called on the worker thread when the job leaves the queue; False if it is already too late."""
        now = self.clock()
        with self._lock:
            slot.started = True
            self._waiting -= 1
            self.metrics.queue_depth.set(self._waiting)
        self.metrics.queue_wait.observe(now - enqueued)
        return now < deadline

    @contextlib.contextmanager
    def reserve(self) -> Iterator[_Slot]:
        """Take a place now (``Overloaded``, 429, when there is none) and hand it to :meth:`run` later.

        For uploads: the place is reserved *before* the body is read, so a
        full server refuses at once instead of buffering megabytes first. A
        place that is never used (the upload was bad) is given back on exit.
        """
        slot = self._admit()
        try:
            yield slot
        finally:
            if not slot.used:
                self._release(slot, Future())

    async def run(
        self,
        fn: Callable[[], T],
        deadline: float,
        slot: _Slot | None = None,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> T:
        """Run ``fn()`` in the pool, or raise ``Overloaded`` now / ``DeadlineExceeded`` at ``deadline``.

        ``deadline`` is an instant of ``self.clock`` (``time.monotonic()``); ``slot`` a place from :meth:`reserve`.
        ``disconnected`` (the request's ``is_disconnected``) is polled while the
        job waits in the queue: work for a client that hung up is dropped before
        it runs (``ClientGone``); a job already running finishes.
        """
        if slot is None or slot.used:
            slot = self._admit()
        slot.used = True
        enqueued = self.clock()

        def job() -> T:
            if not self._start(slot, enqueued, deadline):
                raise DeadlineExceeded("the request waited in the queue past its deadline")
            self.metrics.in_flight.inc()
            began = time.perf_counter()
            try:
                return fn()
            finally:
                elapsed = time.perf_counter() - began
                self.metrics.in_flight.dec()
                with self._lock:
                    self._service_s = 0.8 * self._service_s + 0.2 * elapsed

        try:
            cf = self._executor.submit(job)
        except RuntimeError:  # executor shut down between _admit and submit
            self._release(slot, Future())
            raise DeadlineExceeded("the server is shutting down") from None
        cf.add_done_callback(lambda f: self._release(slot, f))
        try:
            return await self._wait(cf, slot, deadline, disconnected)
        except TimeoutError:
            cf.cancel()  # drops it if still queued; a running job finishes and then frees its slot
            self.metrics.rejections.labels("deadline").inc()
            raise DeadlineExceeded("the request did not finish within its deadline", self.retry_after()) from None
        except DeadlineExceeded:
            self.metrics.rejections.labels("deadline").inc()
            raise

    async def _wait(
        self, cf: Future, slot: _Slot, deadline: float, disconnected: Callable[[], Awaitable[bool]] | None
    ) -> T:
        fut = asyncio.wrap_future(cf)
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise TimeoutError
            poll = remaining if disconnected is None or slot.started else min(remaining, DISCONNECT_POLL_S)
            done, _ = await asyncio.wait({fut}, timeout=poll)
            if done:
                return fut.result()
            # cancel() succeeds only while the job is still queued: it never runs, and its place is free at once
            if disconnected is not None and not slot.started and await disconnected() and cf.cancel():
                self.metrics.rejections.labels("disconnected").inc()
                raise ClientGone("the client closed the connection while the request was queued")

    def close(self) -> None:
        """Refuse new work, drop queued jobs, and let running ones finish in the background."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
