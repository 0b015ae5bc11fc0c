"""Child processes the tests start, with default signal handling whatever the test run inherited.

A shell without job control (``nohup cmd &``, a background CI runner, a
script's ``&``) starts its children with SIGINT ignored, and an ignored
signal stays ignored across ``fork`` and ``exec``: a ``restyle`` child would
never see the Ctrl-C a test sends it, and Python would not even install its
``KeyboardInterrupt`` handler. Every test that starts a process it may
signal goes through :func:`popen` or :func:`run`, which put SIGINT and
SIGTERM back to their defaults in the child before it executes, so the
child behaves as when started from an interactive terminal.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

# The signals the tests send (SIGKILL cannot be ignored); the child starts with their default handling.
RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The session's own home and caches (tests/conftest.py): for children started with a hand-made environment.
HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "RESTYLE_CACHE")


def default_signals(then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` that resets :data:`RESET_SIGNALS` to ``SIG_DFL`` in the child, then calls ``then``."""

    def apply() -> None:
        for sig in RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        if then is not None:
            then()

    return apply


def popen(args: Any, *, preexec_fn: Callable[[], None] | None = None, **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` with the child's signals at their defaults (``preexec_fn`` runs after the reset)."""
    return subprocess.Popen(args, preexec_fn=default_signals(preexec_fn), **kwargs)


def run(args: Any, *, preexec_fn: Callable[[], None] | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` with the child's signals at their defaults (``preexec_fn`` runs after the reset)."""
    return subprocess.run(args, preexec_fn=default_signals(preexec_fn), **kwargs)


def home_environment() -> dict[str, str]:
    """This session's home and cache variables, for a child given an environment of its own."""
    return {name: os.environ[name] for name in HOME_VARIABLES if name in os.environ}


# `restyle ARGS...`, except that once the run is at unit HOLD (the training logged that step, or the video pipeline
# wrote that many frames) it writes HOLD to the test's pipe and waits there: a test that kills or interrupts it then
# does so mid-run on every machine, never after the run ended by itself.
_HELD_RUN = """
import os, signal, sys
from restyle.cli import main

report, kind, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def tell(unit):
    os.write(report, b"%d\\n" % unit)

if kind == "train":
    from restyle.train import loop

    log = loop.Trainer.log

    def log_then_hold(self, *args, **kwargs):
        log(self, *args, **kwargs)
        if self.step == hold:
            tell(self.step)
            while True:
                signal.pause()  # a KeyboardInterrupt (SIGINT, SIGTERM) leaves from here as from a training step

    loop.Trainer.log = log_then_hold
else:
    from restyle.video import pipeline

    run = pipeline.Pipeline.run

    def run_then_hold(self):
        sink, written = self.sink, []

        def write_then_hold(item):
            sink(item)
            written.append(1)
            if len(written) == hold:
                tell(hold)
                self.stop.wait()  # until the run stops: the main thread sets it when a Ctrl-C reaches it

        self.sink = write_then_hold
        return run(self)

    pipeline.Pipeline.run = run_then_hold
sys.exit(main(sys.argv[4:]))
"""


class HeldRun:
    """``restyle ARGS...`` held at unit ``at`` of its work until a signal reaches it.

    ``kind``: "train" (held after logging step ``at``) or "video" (held after writing frame ``at``).
    """

    def __init__(self, kind: str, args: list[str], at: int, **kwargs: Any) -> None:
        import sys

        self.at = at
        read_end, write_end = os.pipe()
        try:
            self.proc = popen(
                [sys.executable, "-c", _HELD_RUN, str(write_end), kind, str(at), *args],
                pass_fds=(write_end,),
                **kwargs,
            )
        finally:
            os.close(write_end)
        self._reports = os.fdopen(read_end, "rb")

    def wait_held(self, timeout: float = 600) -> None:
        """Until the run reports it is held; fails if it ends (or never gets there) first."""
        import select

        ready, _, _ = select.select([self._reports], [], [], timeout)  # the timeout is a safety net only
        got = self._reports.readline() if ready else b""
        assert got == b"%d\n" % self.at, f"the run never reported unit {self.at} (exit {self.proc.poll()})"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reports.close()
