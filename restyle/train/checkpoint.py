"""Resumable training checkpoints, written atomically.

``RUN/checkpoint.pt`` holds model, optimizer, scaler, step, RNG states and
the config. It is written to a temporary file, fsynced and renamed, so a
crash or Ctrl-C mid-write leaves the previous good checkpoint in place.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restyle.atomic import atomic_path
from restyle.errors import InputNotFound, UserError

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> Path:
    target = Path(run_dir) / CHECKPOINT_NAME
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return target


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise InputNotFound(f"no checkpoint to resume in {run_dir} (expected {CHECKPOINT_NAME})")
    try:
        # RNG states include numpy arrays and tuples: a trusted file we wrote ourselves.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc.__class__.__name__}") from None
