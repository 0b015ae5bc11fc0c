"""Checkpoints: safe to load (weights_only), a previous one as fallback, one clear error when nothing is readable."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from restyle.errors import UserError
from restyle.train import checkpoint as ckpt
from restyle.train.config import TrainConfig
from restyle.train.loop import Trainer, resume

TINY = {"image_size": 32, "style_size": 32, "batch_size": 1, "log_every": 1, "sample_every": 1000, "identity_steps": 0}


def _run(photo_dir: Path, style_image: Path, out: Path, steps: int = 2) -> Trainer:
    cfg = TrainConfig(style_images=[style_image], data=photo_dir, out=out, steps=steps, checkpoint_every=1, **TINY)
    trainer = Trainer(cfg)
    trainer.run()
    return trainer


def test_rng_state_round_trips_and_loads_without_pickled_code() -> None:
    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_checkpoints_load_with_weights_only_and_keep_the_previous(photo_dir, style_image, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(photo_dir, style_image, run, steps=2)
    latest = torch.load(run / ckpt.CHECKPOINT_NAME, weights_only=True)  # no pickled objects: loads plainly
    previous = torch.load(run / ckpt.PREVIOUS_NAME, weights_only=True)
    assert (latest["step"], previous["step"]) == (2, 1)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(photo_dir, style_image, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    _run(photo_dir, style_image, run, steps=2)
    (run / ckpt.CHECKPOINT_NAME).write_bytes(b"\x80\x02 damaged after the fact")
    assert ckpt.load_checkpoint(run)["step"] == 1
    assert "resuming from checkpoint.prev.pt (step 1)" in capsys.readouterr().out
    resume(run, steps=3)  # and training goes on from there
    assert torch.load(run / ckpt.CHECKPOINT_NAME, weights_only=True)["step"] == 3


def test_nothing_readable_is_one_clear_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / ckpt.CHECKPOINT_NAME).write_bytes(b"garbage")
    (run / ckpt.PREVIOUS_NAME).write_bytes(b"garbage too")
    with pytest.raises(UserError, match="no readable checkpoint") as info:
        ckpt.load_checkpoint(run)
    assert "\n" not in str(info.value)


def test_a_checkpoint_of_another_network_is_one_clear_error(photo_dir, style_image, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(photo_dir, style_image, run, steps=1)
    state = ckpt.load_checkpoint(run)
    state["config"]["arch"] = "johnson"  # e.g. a hand-edited config, or files from two runs mixed up
    torch.save(state, run / ckpt.CHECKPOINT_NAME)
    with pytest.raises(UserError, match="does not match a johnson network"):
        resume(run)
