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
