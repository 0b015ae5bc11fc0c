"""The threaded pipeline: a stage error is re-raised, a caller's cancel stops the run, and the two stay apart."""

from __future__ import annotations

import queue
import threading

import pytest

from restyle.video.pipeline import Cancelled, Pipeline


def test_a_failing_stage_never_sets_the_callers_cancel_event() -> None:
    cancel = threading.Event()

    def boom(item: int) -> int:
        if item == 3:
            raise ValueError("frame 3 is corrupt")
        return item

    with pytest.raises(ValueError, match="frame 3"):
        Pipeline(range(10), [boom], lambda _: None, cancel=cancel).run()
    assert not cancel.is_set()  # the caller's event (a worker's, shared by later jobs) is untouched


def test_the_callers_cancel_event_stops_the_run() -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def sink(item: int) -> None:
        seen.append(item)
        if item == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        Pipeline(iter(range(10_000)), [lambda x: x], sink, cancel=cancel).run()
    assert len(seen) < 10_000


def test_a_clean_run_delivers_every_item_in_order() -> None:
    seen: list[int] = []
    Pipeline(range(50), [lambda x: x * 2, lambda x: x + 1], seen.append).run()
    assert seen == [x * 2 + 1 for x in range(50)]


class ThreadClocks:
    """A fake ``perf_counter`` per thread: it moves only when that thread calls :meth:`spend`.

    Each pipeline stage runs in its own thread, so what a stage's clock shows is exactly the time its own
    thread "spent", whatever the other threads do meanwhile and however busy the machine is.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> float:
        return getattr(self._local, "now", 0.0)

    def spend(self, seconds: float) -> None:
        self._local.now = self() + seconds


WAIT_S = 1000.0  # what every call on a pipeline queue "costs" its thread: waiting, which is no stage's work


def test_busy_time_is_counted_per_stage_not_waiting() -> None:
    clocks = ThreadClocks()

    class WaitingQueue(queue.Queue):
        def put(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            clocks.spend(WAIT_S)
            return super().put(*args, **kwargs)

        def get(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            clocks.spend(WAIT_S)
            return super().get(*args, **kwargs)

    def source():
        for i in range(4):
            clocks.spend(0.02)  # decoding a frame
            yield i

    def double(x: int) -> int:
        clocks.spend(0.05)
        return 2 * x

    got: list[int] = []

    def sink(x: int) -> None:
        clocks.spend(0.01)
        got.append(x)

    pipe = Pipeline(source(), [double], sink, clock=clocks)
    pipe.queues = [WaitingQueue(maxsize=q.maxsize) for q in pipe.queues]
    pipe.run()
    assert got == [0, 2, 4, 6]
    assert list(pipe.busy) == ["decode", "double", "encode"]
    # 4 frames x the work of each stage; none of the WAIT_S its thread spent on every queue call
    assert pipe.busy == pytest.approx({"decode": 4 * 0.02, "double": 4 * 0.05, "encode": 4 * 0.01}, abs=1e-9)
