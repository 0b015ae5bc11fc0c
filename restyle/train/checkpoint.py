"""Resumable training checkpoints, written atomically.

``RUN/checkpoint.pt`` holds model, optimizer, scaler, step, RNG states and
the config. It is written to a temporary file, fsynced and renamed, so a
crash or Ctrl-C mid-write leaves the previous good checkpoint in place.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restyle.atomic import atomic_path
from restyle.errors import InputNotFound, UserError

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors, lists and numbers only, so ``torch.load(weights_only=True)`` reads it."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npstate = state["numpy"]
    if isinstance(npstate, dict):
        keys = npstate["keys"].numpy().astype(np.uint32)
        np.random.set_state((npstate["kind"], keys, npstate["pos"], npstate["has_gauss"], npstate["cached_gaussian"]))
    else:  # checkpoints written before the weights_only format: numpy's own tuple
        np.random.set_state(npstate)
    py = state["python"]
    if isinstance(py, dict):
        random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    else:
        random.setstate(py)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``checkpoint.pt`` atomically; the one it replaces is kept as ``checkpoint.prev.pt``.

    The previous checkpoint is the fallback when the latest one cannot be read
    (a disk that lied about a flush, a file damaged after the fact).
    """
    target = Path(run_dir) / CHECKPOINT_NAME
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
        if target.is_file():
            os.replace(target, Path(run_dir) / PREVIOUS_NAME)
    return target


# Checkpoints written before the weights_only format hold numpy's RNG tuple; these
# numpy reconstructors are all that format needs (no arbitrary code can run).
_NP_CORE = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
_LEGACY_GLOBALS = [_NP_CORE.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _read(path: Path) -> dict[str, Any]:
    with torch.serialization.safe_globals(_LEGACY_GLOBALS):
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "config"} <= set(state):
        raise ValueError("not a restyle training checkpoint")
    return state


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The latest readable checkpoint of a run: ``checkpoint.pt``, else the previous one (with a warning)."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_NAME
    previous = run_dir / PREVIOUS_NAME
    if not path.is_file() and not previous.is_file():
        raise InputNotFound(f"no checkpoint to resume in {run_dir} (expected {CHECKPOINT_NAME})")
    problems = []
    for candidate in (path, previous):
        if not candidate.is_file():
            continue
        try:
            state = _read(candidate)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: try the fallback, then one clear error
            problems.append(f"{candidate.name}: {type(exc).__name__}")
            continue
        if problems:
            print(f"warning: {'; '.join(problems)} unreadable; resuming from {candidate.name} (step {state['step']})")
        return state
    raise UserError(f"cannot resume {run_dir}: no readable checkpoint ({'; '.join(problems)})")
