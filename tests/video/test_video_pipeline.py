"""The threaded pipeline: a stage error is re-raised, a caller's cancel stops the run, and the two stay apart."""

from __future__ import annotations

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
