"""Fault injection with real processes: killed, or starved of disk. Nothing is lost, nothing is left half-written."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SAMPLE_PHOTO

TRAIN = ["--batch-size", "1", "--image-size", "32", "--style-size", "32", "--log-every", "1", "--identity-steps", "0"]


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["total"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


@pytest.mark.slow
def test_kill_9_during_training_loses_at_most_one_checkpoint_interval(
    photo_dir: Path, style_image: Path, tmp_path: Path
) -> None:
    common = ["--style-image", str(style_image), "--data", str(photo_dir), "--steps", "12", "--seed", "4", *TRAIN]
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, "-m", "restyle", "train", *common, "--out", str(straight)], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "restyle", "train", *common, "--out", str(run), "--checkpoint-every", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and len(_losses(run)) >= 7):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no handler runs: what a power cut or the OOM killer does
    proc.wait(timeout=60)
    from restyle.train.checkpoint import load_checkpoint

    saved = load_checkpoint(run)["step"]
    assert saved >= len(_losses(run)) - 3  # at most one checkpoint interval lost
    done = subprocess.run([sys.executable, "-m", "restyle", "train", "--resume", str(run)], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    resumed, reference = _losses(run), _losses(straight)
    # metrics.jsonl keeps the killed run's lines and appends the resumed ones: the last value per step wins
    assert sorted(resumed) == sorted(reference) == list(range(1, 13))
    assert all(resumed[s] == pytest.approx(reference[s], rel=1e-5) for s in range(saved + 1, 13))


def _limited(max_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing

    return apply


def test_a_full_disk_during_stylize_is_a_clear_error_and_leaves_nothing_partial(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name, size in (("a_small", (64, 48)), ("b_big", (512, 341))):
        Image.open(SAMPLE_PHOTO).resize(size).save(src / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier output")
    cmd = [sys.executable, "-m", "restyle", "stylize", str(src), "-o", str(out), "--format", "png", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=_limited(60_000))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "b_big" in proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_small_starry_night.png", "keep.txt"], names  # no temporary, no half-written PNG
    assert (out / "keep.txt").read_text() == "an earlier output"
    Image.open(out / "a_small_starry_night.png").load()  # the one that fitted is whole


def test_a_full_disk_during_export_leaves_no_model_file(tmp_path: Path) -> None:
    from tests.export.models import checkpoint

    target = tmp_path / "m.onnx"
    cmd = [sys.executable, "-m", "restyle", "export", str(checkpoint()), "-o", str(target), "--exporter", "torchscript"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=_limited(100_000))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_a_video_run_leaves_nothing_at_the_target(tmp_path: Path) -> None:
    from tests.export.models import exported
    from tests.video.clips import moving_scene, write_clip

    clip = write_clip(tmp_path / "in.mp4", moving_scene(24, 64, 48), fps=12, audio=True)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "styled.mp4"
    cmd = [sys.executable, "-m", "restyle", "video", str(clip), "-o", str(target), "--style", str(exported()),
           "--device", "cpu"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=_limited(4_000))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert list(out.iterdir()) == []
