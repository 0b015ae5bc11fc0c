"""Ctrl-C during training saves a checkpoint and exits 130; --resume finishes the run."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import procs


@pytest.mark.slow
def test_ctrl_c_saves_a_resumable_checkpoint(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "--style-image", str(style_image), "--data", str(photo_dir), "--out", str(out), "--steps", "1000",
        "--batch-size", "1", "--image-size", "32", "--style-size", "32", "--log-every", "1", "--checkpoint-every", "1000",
        "--identity-steps", "0",
    ]  # fmt: skip
    held = procs.HeldRun("train", ["train", *args], at=2, stderr=subprocess.PIPE, text=True)  # held after step 2
    try:
        held.wait_held()  # mid-run for sure: the Ctrl-C below cannot come after the run has ended
        held.proc.send_signal(signal.SIGINT)
        _, err = held.proc.communicate(timeout=300)
    finally:
        held.close()
    assert held.proc.returncode == 130, err[-1000:]
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    from restyle.train.checkpoint import load_checkpoint

    assert load_checkpoint(out)["step"] == 2  # saved where the Ctrl-C landed
    assert not (out / "final.pt").exists()

    done = subprocess.run(
        [sys.executable, "-m", "restyle", "train", "--resume", str(out), "--steps", "4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-1000:]
    assert (out / "final.pt").is_file()
