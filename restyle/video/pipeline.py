"""Threaded stages joined by bounded queues: decode -> stylize -> stabilize -> encode.

Why threads: FFmpeg (decode/encode), ONNX Runtime and OpenCV all release the
GIL while they work, so one thread per stage keeps every core busy while a
frame is being decoded, another stylized and a third encoded. Why bounded
queues: a fast decoder must not run ahead and fill the memory with frames.

Errors and interrupts: the first failure in any stage sets the run's own
stop event; every blocking ``put``/``get`` wakes up regularly to check it
(and the caller's ``cancel`` event), so all threads finish promptly and the
main thread re-raises the original error (a ``KeyboardInterrupt`` arrives in
the main thread, which is only joining).

The caller's ``cancel`` event is only ever *read*: a failing run must not
set an event it does not own. (It once did, and the job worker handed in its
service-wide stop event, so one corrupt video stopped the worker for good.)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from restyle.errors import Cancelled

_END = object()
_POLL_S = 0.1


class Pipeline:
    """Runs ``source`` -> ``stages`` -> ``sink``, each in its own thread.

    ``source`` is an iterable (iterated in its own thread); each stage is a
    function ``item -> item`` (called in order, one item at a time, so a stage
    may keep state such as the previous frame); ``sink`` consumes the results.
    ``cancel`` (an Event) lets another thread, e.g. a job worker, stop the run.
    ``sink_in_caller``: the sink runs in the thread that calls ``run`` (``restyle
    live`` shows frames there: GUI toolkits want every window call on the one
    thread that made the window). ``ends``: the source's and the sink's names in ``busy``.
    """

    def __init__(
        self,
        source: Iterable[Any],
        stages: list[Callable[[Any], Any]],
        sink: Callable[[Any], None],
        *,
        queue_size: int = 4,
        cancel: threading.Event | None = None,
        sink_in_caller: bool = False,
        ends: tuple[str, str] = ("decode", "encode"),
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.source = source
        self.stages = stages
        self.sink = sink
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=queue_size) for _ in range(len(stages) + 1)]
        self.stop = threading.Event()  # this run's own: set on the first failure, or when cancelled
        self.cancel = cancel  # the caller's: read, never set
        self.sink_in_caller = sink_in_caller
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        names = [ends[0], *(getattr(s, "__name__", f"stage{i}") for i, s in enumerate(stages)), ends[1]]
        self.names = names
        # Seconds each stage spent working (not waiting on its queues): ``restyle video --verbose`` prints them.
        # The slowest stage bounds the frame rate; the others overlap with it. ``clock`` reads the time (a test's
        # fake clock counts the work it pretends to do).
        self.clock = clock
        self.busy: dict[str, float] = dict.fromkeys(names, 0.0)

    # -- queue helpers that never block forever -------------------------------
    def _stopping(self) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            self.stop.set()
        return self.stop.is_set()

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            if self._stopping():
                raise Cancelled
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue[Any]) -> Any:
        while True:
            if self._stopping():
                raise Cancelled
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if not isinstance(exc, Cancelled):
                self.errors.append(exc)
        self.stop.set()

    # -- the threads ----------------------------------------------------------
    def _produce(self) -> None:
        try:
            items = iter(self.source)
            while True:
                began = self.clock()
                item = next(items, _END)
                self.busy[self.names[0]] += self.clock() - began
                if item is _END:
                    break
                self._put(self.queues[0], item)
            self._put(self.queues[0], _END)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._fail(exc)
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                try:
                    close()  # a generator's finally (closing the demuxer) runs in its own thread
                except BaseException as exc:  # noqa: BLE001
                    self._fail(exc)

    def _stage(self, i: int) -> None:
        fn, q_in, q_out, name = self.stages[i], self.queues[i], self.queues[i + 1], self.names[i + 1]
        try:
            while (item := self._get(q_in)) is not _END:
                began = self.clock()
                out = fn(item)
                self.busy[name] += self.clock() - began
                self._put(q_out, out)
            self._put(q_out, _END)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)

    def _consume(self) -> None:
        try:
            while (item := self._get(self.queues[-1])) is not _END:
                began = self.clock()
                self.sink(item)
                self.busy[self.names[-1]] += self.clock() - began
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)

    def run(self) -> None:
        """Run to completion; re-raises the first stage error, or ``Cancelled`` if cancelled from outside."""
        targets = [self._produce, *(lambda i=i: self._stage(i) for i in range(len(self.stages))), self._consume]
        if self.sink_in_caller:
            targets.pop()
        threads = [threading.Thread(target=t, name=f"video-{n}", daemon=True) for t, n in zip(targets, self.names)]
        for t in threads:
            t.start()
        try:
            if self.sink_in_caller:
                self._consume()
            for t in threads:
                while t.is_alive():
                    t.join(timeout=_POLL_S)
        except BaseException:
            self.stop.set()
            for t in threads:
                t.join()
            raise
        if self.errors:
            raise self.errors[0]
        if self.stop.is_set():
            raise Cancelled("cancelled")


def format_breakdown(stage_seconds: dict[str, float], frames: int, wall: float) -> str:
    """Busy time per stage, per frame and as a share of the wall time (``--verbose`` of video and live).

    In the threaded pipeline stages overlap, so the shares add past 100 %; the
    slowest stage bounds the frame rate.
    """
    rows = [f"{'stage':<12} {'busy s':>8} {'ms/frame':>9} {'of wall':>8}"]
    for name, busy in stage_seconds.items():
        per = busy / frames * 1000 if frames else 0.0
        share = busy / wall if wall else 0.0
        rows.append(f"{name:<12} {busy:>8.2f} {per:>9.1f} {share:>7.0%}")
    rows.append(f"{'wall':<12} {wall:>8.2f} {wall / max(1, frames) * 1000:>9.1f}")
    return "\n".join(rows)
