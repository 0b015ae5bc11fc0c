"""Ctrl-C during training saves a checkpoint and exits 130; --resume finishes the run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
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
    proc = procs.popen([sys.executable, "-m", "restyle", "train", *args], stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 600  # generous: CI machines may be busy
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-1000:]
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    assert (out / "checkpoint.pt").is_file()

    done = subprocess.run(
        [sys.executable, "-m", "restyle", "train", "--resume", str(out), "--steps", "4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-1000:]
    assert (out / "final.pt").is_file()
