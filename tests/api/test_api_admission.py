"""The admission controller on its own: bounded pool, bounded queue, deadlines, slot accounting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from restyle.api.admission import Admission, DeadlineExceeded, Overloaded
from restyle.api.metrics import Metrics


def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    async def main() -> None:
        metrics = Metrics()
        adm = Admission(pool_size=1, queue_size=1, metrics=metrics)
        gate = threading.Event()
        far = time.monotonic() + 30
        running = asyncio.create_task(adm.run(lambda: gate.wait(10), far))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(adm.run(lambda: "queued", far))
        await asyncio.sleep(0.05)
        assert (adm.admitted, adm.waiting) == (2, 1)
        started = time.perf_counter()
        with pytest.raises(Overloaded) as info:
            await adm.run(lambda: "refused", far)
        assert time.perf_counter() - started < 0.05  # refused immediately, not after waiting
        assert info.value.retry_after >= 1 and info.value.http_status == 429
        gate.set()
        assert await running is True and await queued == "queued"
        await asyncio.sleep(0.01)
        assert (adm.admitted, adm.waiting) == (0, 0)
        assert metrics.rejections.labels("queue_full")._value.get() == 1
        adm.close()

    asyncio.run(main())


def test_deadline_drops_a_queued_job_and_keeps_running_ones_counted() -> None:
    async def main() -> None:
        adm = Admission(pool_size=1, queue_size=4)
        gate = threading.Event()
        ran: list[int] = []
        blocker = asyncio.create_task(adm.run(lambda: gate.wait(10), time.monotonic() + 0.1))
        await asyncio.sleep(0.02)
        with pytest.raises(DeadlineExceeded):
            await adm.run(lambda: ran.append(1), time.monotonic() + 0.05)
        with pytest.raises(DeadlineExceeded):
            await blocker  # its own deadline passes while it runs
        assert adm.admitted == 1  # the running job still holds its slot until it really ends
        gate.set()
        await asyncio.sleep(0.05)
        assert ran == [] and adm.admitted == 0 and adm.waiting == 0
        adm.close()

    asyncio.run(main())


def test_errors_propagate_and_free_the_slot() -> None:
    async def main() -> None:
        adm = Admission(pool_size=2, queue_size=0)

        def boom() -> None:
            raise ValueError("bad")

        with pytest.raises(ValueError):
            await adm.run(boom, time.monotonic() + 5)
        await asyncio.sleep(0.01)
        assert adm.admitted == 0
        results = await asyncio.gather(*(adm.run(lambda i=i: i * i, time.monotonic() + 5) for i in range(2)))
        assert results == [0, 1]
        adm.close()
        with pytest.raises(DeadlineExceeded):
            await adm.run(lambda: 1, time.monotonic() + 5)

    asyncio.run(main())
