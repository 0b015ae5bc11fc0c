"""Fault injection with real processes: killed, or starved of disk. Nothing is lost, nothing is left half-written."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import procs
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
    # held after logging step 7 until the kill: killed provably mid-run, never after it ended by itself
    cmd = ["train", *common, "--out", str(run), "--checkpoint-every", "3"]
    held = procs.HeldRun("train", cmd, at=7, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        held.wait_held()
        held.proc.send_signal(signal.SIGKILL)  # no handler runs: what a power cut or the OOM killer does
        assert held.proc.wait(timeout=60) == -signal.SIGKILL  # killed mid-run: it had not finished on its own
    finally:
        held.close()
    assert not (run / "final.pt").exists() and sorted(_losses(run)) == list(range(1, 8))
    from restyle.train.checkpoint import load_checkpoint

    saved = load_checkpoint(run)["step"]
    assert saved == 6  # the last checkpoint (every 3 steps) before the kill after step 7
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


def _cold_cache(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose cache folder is new and empty (a fresh clone's), whatever ran before in the session."""
    cache = tmp_path / "cold-cache"
    cache.mkdir()
    return {**os.environ, "RESTYLE_CACHE": str(cache)}, cache


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_a_full_disk_during_stylize_is_a_clear_error_and_leaves_nothing_partial(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name, size in (("a_small", (64, 48)), ("b_big", (512, 341))):
        Image.open(SAMPLE_PHOTO).resize(size).save(src / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier output")
    env, cache = _cold_cache(tmp_path)
    cmd = [sys.executable, "-m", "restyle", "stylize", str(src), "-o", str(out), "--format", "png", "--device", "cpu"]
    proc = procs.run(cmd, capture_output=True, text=True, timeout=300, env=env, preexec_fn=_limited(60_000))
    assert proc.returncode == 1, proc.stderr
    assert _files(cache) == []  # the graph did not fit: no cache file, not even a partial one
    assert "Traceback" not in proc.stderr and "b_big" in proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_small_starry_night.png", "keep.txt"], names  # no temporary, no half-written PNG
    assert (out / "keep.txt").read_text() == "an earlier output"
    Image.open(out / "a_small_starry_night.png").load()  # the one that fitted is whole


def test_a_full_disk_during_export_leaves_no_model_file(tmp_path: Path) -> None:
    from tests.export.models import checkpoint

    target = tmp_path / "m.onnx"
    cmd = [sys.executable, "-m", "restyle", "export", str(checkpoint()), "-o", str(target), "--exporter", "torchscript"]
    proc = procs.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=_limited(100_000))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_a_video_run_leaves_nothing_at_the_target(tmp_path: Path) -> None:
    from tests.export.models import exported
    from tests.video.clips import moving_scene, write_clip

    clip = write_clip(tmp_path / "in.mp4", moving_scene(24, 64, 48), fps=12, audio=True)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "styled.mp4"
    env, cache = _cold_cache(tmp_path)
    cmd = [sys.executable, "-m", "restyle", "video", str(clip), "-o", str(target), "--style", str(exported()),
           "--device", "cpu"]  # fmt: skip
    proc = procs.run(cmd, capture_output=True, text=True, timeout=300, env=env, preexec_fn=_limited(4_000))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert list(out.iterdir()) == [] and _files(cache) == []


# Loads a model through the registry as the CLI does (the cache folder from RESTYLE_CACHE), stylizes a photo whole,
# tiled and with frozen statistics (a video shot), and writes the pictures to stdout: a pipe, which no file-size
# limit covers, so the child needs no disk at all.
_NO_DISK_CHILD = """
import io, sys
import numpy as np
from restyle.imaging import decode_image, fit_max_size
from restyle.runtime import StylizeOptions
from restyle.runtime.cli import cli_registry

stylizer, style = cli_registry(None).resolve_style("the_scream", provider="cpu", threads=1)
options = StylizeOptions(style_weights=style)
photo = fit_max_size(decode_image(sys.argv[1]), 96)
pictures = {
    "whole": stylizer.stylize(photo, options),
    "tiled": stylizer.stylize(photo, StylizeOptions(style_weights=style, tile=64)),
    "frozen": stylizer.frozen(photo, options).stylize(photo * 0.8, options),
}
buffer = io.BytesIO()
np.savez(buffer, **pictures)
sys.stdout.buffer.write(buffer.getvalue())
"""


def _pictures(stdout: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(stdout)) as saved:
        return {name: saved[name] for name in saved.files}


@pytest.mark.parametrize(
    ("limit", "cache"),
    [(0, "empty"), (60_000, "under-a-file")],
    ids=["no-file-can-be-written", "unwritable-cache-and-scratch-cut-short"],
)
def test_a_model_loads_and_stylizes_with_no_scratch_space_from_an_empty_cache(
    limit: int, cache: str, tmp_path: Path
) -> None:
    """Cold cache, and the scratch graph cannot be written: the exported graph runs, with the same pictures.

    0 bytes: no file can be written, so no temporary folder is usable (``tempfile`` finds none) and the empty
    cache stays empty. 60 kB with the cache folder beneath a regular file: the cache cannot exist, and ONNX
    Runtime's scratch write of the bundled model (about 0.8 MB) fails part way.
    """
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "cache" if cache == "empty" else tmp_path / "a-file" / "cache"
    if cache == "empty":
        folder.mkdir()
    env = {**os.environ, "RESTYLE_CACHE": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-c", _NO_DISK_CHILD, str(SAMPLE_PHOTO)]
    proc = procs.run(cmd, capture_output=True, timeout=300, env=env, preexec_fn=_limited(limit))
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]
    starved = _pictures(proc.stdout)
    if cache == "empty":
        assert _files(folder) == []  # nothing written, not even a partial file

    # the same pictures as a run with disk space, which rewrites the graphs (sub-pixel, frozen norms)
    env["RESTYLE_CACHE"] = str(tmp_path / "roomy")
    roomy = _pictures(procs.run(cmd, capture_output=True, timeout=300, env=env, check=True).stdout)
    cached = _files(tmp_path / "roomy")
    assert cached and all(p.suffix == ".onnx" and not p.name.startswith(".") for p in cached)  # no scratch left
    assert sorted(starved) == sorted(roomy) == ["frozen", "tiled", "whole"]
    for name, picture in starved.items():
        assert picture.shape == roomy[name].shape and np.isfinite(picture).all(), name
        assert np.abs(picture - roomy[name]).max() < 1e-4, name


def test_stylize_and_video_work_with_an_unwritable_cache_and_a_small_file_size_limit(tmp_path: Path) -> None:
    """The CLI end to end from a cold, unusable cache: outputs that fit are written, and no traceback."""
    from tests.export.models import exported
    from tests.video.clips import moving_scene, write_clip

    (tmp_path / "a-file").write_text("not a folder")
    env = {**os.environ, "RESTYLE_CACHE": str(tmp_path / "a-file" / "cache")}
    photo = tmp_path / "photo.png"
    Image.open(SAMPLE_PHOTO).resize((64, 48)).save(photo)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "restyle", "stylize", str(photo), "-o", str(out), "--format", "png", "--device", "cpu"]
    proc = procs.run(cmd, capture_output=True, text=True, timeout=300, env=env, preexec_fn=_limited(60_000))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    Image.open(out / "photo_starry_night.png").load()

    clip = write_clip(tmp_path / "in.mp4", moving_scene(6, 64, 48), fps=12, audio=False)
    target = out / "styled.mp4"
    cmd = [sys.executable, "-m", "restyle", "video", str(clip), "-o", str(target), "--style", str(exported()),
           "--device", "cpu"]  # fmt: skip
    proc = procs.run(cmd, capture_output=True, text=True, timeout=300, env=env, preexec_fn=_limited(60_000))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert target.stat().st_size > 0
