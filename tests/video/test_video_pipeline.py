"""The threaded pipeline: a stage error is re-raised, a caller's cancel stops the run, and the two stay apart."""

from __future__ import annotations

import threading
import time

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


def test_busy_time_is_counted_per_stage_not_waiting() -> None:
    def slow_source():
        for i in range(4):
            time.sleep(0.02)
            yield i

    def double(x: int) -> int:
        time.sleep(0.05)
        return 2 * x

    got: list[int] = []
    pipe = Pipeline(slow_source(), [double], got.append)
    pipe.run()
    assert got == [0, 2, 4, 6]
    assert list(pipe.busy) == ["decode", "double", "encode"]
    assert pipe.busy["double"] == pytest.approx(0.2, abs=0.08)  # 4 x 50 ms of work
    assert pipe.busy["decode"] == pytest.approx(0.08, abs=0.06)  # 4 x 20 ms; time blocked on a full queue is not work
    assert pipe.busy["encode"] < 0.02  # waiting for frames is not counted
