"""The multi-process path: torchrun, DistributedDataParallel, gloo on CPU, two ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from restyle.models.serialization import load_model
from tests import procs


@pytest.mark.slow
def test_torchrun_two_processes_gloo(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "restyle", "train",
        "--style-image", str(style_image), "--data", str(photo_dir), "--out", str(out),
        "--steps", "3", "--batch-size", "1", "--image-size", "32", "--style-size", "32",
        "--log-every", "1", "--checkpoint-every", "3", "--device", "cpu", "--identity-steps", "2",
    ]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **procs.home_environment()}  # the session's home
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Rank 0 alone writes: one metrics line per step, not two.
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    # The logged rate counts both ranks' images: one step of batch 1 on each of the two ranks is two images.
    assert [r["images"] for r in lines] == [2, 2, 2]
    assert all(r["images_per_s"] > 0 for r in lines)
    net, record = load_model(out / "final.pt")
    assert record["metadata"]["hardware"].endswith("x2")
    assert all(torch.isfinite(p).all() for p in net.parameters())
