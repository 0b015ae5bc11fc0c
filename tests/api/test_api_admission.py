"""The admission controller on its own: bounded pool, bounded queue, deadlines, slot accounting.

No test here sleeps to order events or measures a duration: a job in the pool
holds its thread on a ``threading.Event`` the test opens, the test waits for
what it needs to be true (a job running, a request queued), and deadlines are
read from a fake clock the test moves, so a deadline passes exactly when the
test says and never because the machine was slow.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from restyle.api.admission import Admission, DeadlineExceeded, Overloaded
from restyle.api.metrics import Metrics

SAFETY_S = 30.0  # only ever reached when the behaviour under test is broken: the test then fails


class FakeClock:
    """``time.monotonic`` for the admission controller; moves only when the test calls :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Holder:
    """A pool job that reports when it runs and then holds its pool thread until :meth:`release`."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.gate = threading.Event()

    def __call__(self) -> str:
        self.running.set()
        assert self.gate.wait(SAFETY_S), "the test never released the pool thread"
        return "held"

    async def wait_running(self) -> None:
        assert await asyncio.to_thread(self.running.wait, SAFETY_S), "the job never started in the pool"

    def release(self) -> None:
        self.gate.set()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``condition()`` holds (the timeout is a safety net that fails the test)."""
    give_up = time.monotonic() + SAFETY_S
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    async def main() -> None:
        metrics = Metrics()
        adm = Admission(pool_size=1, queue_size=1, metrics=metrics)
        holder = Holder()
        far = time.monotonic() + 3600
        running = asyncio.create_task(adm.run(holder, far))
        await holder.wait_running()  # the one pool thread is taken
        queued = asyncio.create_task(adm.run(lambda: "queued", far))
        await until(lambda: adm.waiting == 1, "the second request to wait in the queue")
        assert (adm.admitted, adm.waiting) == (2, 1)
        # Refused while the pool is still held: it waited for no place to free up (had it queued, nothing would
        # free one, since the holder is released only below, and the safety net would fail the test).
        with pytest.raises(Overloaded) as info:
            await asyncio.wait_for(adm.run(lambda: "refused", far), SAFETY_S)
        assert not holder.gate.is_set() and not running.done() and not queued.done()
        assert (adm.admitted, adm.waiting) == (2, 1)  # the refusal took no place
        assert info.value.retry_after >= 1 and info.value.http_status == 429
        assert metrics.rejections.labels("queue_full")._value.get() == 1
        holder.release()
        assert await running == "held" and await queued == "queued"
        assert (adm.admitted, adm.waiting) == (0, 0)  # a slot is released before its caller gets the answer
        assert metrics.rejections.labels("queue_full")._value.get() == 1
        adm.close()

    asyncio.run(main())


def test_deadline_drops_a_queued_job_and_keeps_running_ones_counted() -> None:
    async def main() -> None:
        clock = FakeClock()
        adm = Admission(pool_size=1, queue_size=4, clock=clock)
        holder = Holder()
        ran: list[int] = []
        blocker = asyncio.create_task(adm.run(holder, clock() + 0.2))
        await holder.wait_running()  # started before its deadline (the clock has not moved)
        queued = asyncio.create_task(adm.run(lambda: ran.append(1), clock() + 0.1))
        await until(lambda: adm.waiting == 1, "the second job to wait in the queue")

        clock.advance(0.15)  # the queued job's deadline passes while the pool is held: it is dropped
        with pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(queued, SAFETY_S)
        assert (adm.admitted, adm.waiting) == (1, 0) and not blocker.done()  # its place is free at once

        clock.advance(0.1)  # now the running job's deadline passes too
        with pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(blocker, SAFETY_S)  # its caller is answered while the job still runs...
        assert holder.running.is_set() and not holder.gate.is_set()
        assert adm.admitted == 1  # ...and the running job holds its slot until it really ends
        holder.release()
        await until(lambda: adm.admitted == 0, "the running job to give its slot back")
        # One pool thread, first in first out: once a later job has run, the dropped one had its turn.
        assert await asyncio.wait_for(adm.run(lambda: "later", clock() + 10), SAFETY_S) == "later"
        assert ran == [] and (adm.admitted, adm.waiting) == (0, 0)  # the dropped job never ran
        adm.close()

    asyncio.run(main())


def test_errors_propagate_and_free_the_slot() -> None:
    async def main() -> None:
        adm = Admission(pool_size=2, queue_size=0)

        def boom() -> None:
            raise ValueError("bad")

        with pytest.raises(ValueError):
            await adm.run(boom, time.monotonic() + SAFETY_S)
        assert adm.admitted == 0  # released before the error reaches the caller
        results = await asyncio.gather(*(adm.run(lambda i=i: i * i, time.monotonic() + SAFETY_S) for i in range(2)))
        assert results == [0, 1] and adm.admitted == 0
        adm.close()
        with pytest.raises(DeadlineExceeded):
            await adm.run(lambda: 1, time.monotonic() + SAFETY_S)

    asyncio.run(main())
