"""Round trips through real FFmpeg (PyAV): frames, frame rate, audio, rotation, VFR, errors, atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from restyle.cli import main
from restyle.errors import UserError
from restyle.video.io import BadVideo, probe
from restyle.video.stylize import stylize_video
from tests import procs
from tests.video.clips import audio_packets, moving_scene, video_summary, write_clip


def test_round_trip_keeps_frames_rate_and_audio(clip: Path, model_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.mp4"
    code = main(["video", str(clip), "-o", str(out), "--style", str(model_path), "--device", "cpu", "--verbose"])
    assert code == 0
    breakdown = capsys.readouterr().err.splitlines()[-6:]  # --verbose: where the time went, stage by stage
    assert [line.split()[0] for line in breakdown] == ["stage", "decode", "stylize", "stabilize", "encode", "wall"]
    assert float(breakdown[2].split()[2]) > 0  # the stylize stage's ms per frame
    n_in, rate_in, times_in = video_summary(clip)
    n_out, rate_out, times_out = video_summary(out)
    assert (n_out, rate_out) == (n_in, rate_in) == (12, 12)
    assert times_out == pytest.approx(times_in)
    assert audio_packets(out) == audio_packets(clip)  # copied bit for bit
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt, ctx.profile) == ("h264", "yuv420p", "High")
    assert not list(tmp_path.glob(".out.mp4.*"))  # no temporary left behind


def test_rotation_is_applied_and_odd_sizes_become_even(stylizer, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "rot.mp4", moving_scene(4, 64, 48), rotation=90, audio=False)
    info = probe(src)
    assert (info.width, info.height, info.rotation) == (48, 64, 90)
    result = stylize_video(src, tmp_path / "out.mp4", stylizer, stabilize=False)
    assert (result.width, result.height) == (48, 64)
    out = probe(tmp_path / "out.mp4")
    assert (out.width, out.height, out.rotation) == (48, 64, 0)
    odd = write_clip(tmp_path / "odd.mp4", moving_scene(3, 62, 46), audio=False)
    result = stylize_video(odd, tmp_path / "odd_out.mp4", stylizer, stabilize=False)
    assert (result.width, result.height) == (62, 46)


def test_variable_frame_rate_timestamps_survive(stylizer, tmp_path: Path) -> None:
    pts = [0, 10, 15, 40, 45, 50, 90, 100]  # time base 1/120 s: irregular gaps
    src = write_clip(tmp_path / "vfr.mp4", moving_scene(len(pts), 64, 48), pts=pts, audio=True)
    stylize_video(src, tmp_path / "out.mp4", stylizer)
    _, _, times_in = video_summary(src)
    n, _, times_out = video_summary(tmp_path / "out.mp4")
    assert n == len(pts)
    assert times_out == pytest.approx(times_in, abs=1e-3)


def test_avi_with_b_frames_gets_its_timestamps_sorted(stylizer, tmp_path: Path) -> None:
    """AVI stores decode-order timestamps: frames decode as 1, 3, 4, 2, ...; the output must be evenly timed."""
    src = tmp_path / "b.avi"
    with av.open(str(src), "w", format="avi") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt, v.options = 64, 48, "yuv420p", {"preset": "medium", "bf": "3"}
        for i, rgb in enumerate(moving_scene(20, 64, 48)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
    with av.open(str(src)) as c:
        raw = [f.pts for f in c.decode(video=0)]
    assert raw != sorted(raw)  # the container really is shuffled
    stylize_video(src, tmp_path / "out.mp4", stylizer, start=0.5, duration=1.0)
    n, rate, times = video_summary(tmp_path / "out.mp4")
    assert (n, rate) == (10, 10)
    assert times == pytest.approx([i / 10 for i in range(10)])


def test_start_and_duration_trim_video_and_audio(clip: Path, stylizer, tmp_path: Path) -> None:
    result = stylize_video(clip, tmp_path / "cut.mp4", stylizer, start=0.25, duration=0.5)
    n, rate, times = video_summary(tmp_path / "cut.mp4")
    assert n == result.frames == 6 and rate == 12 and times[0] == 0.0
    assert 0 < len(audio_packets(tmp_path / "cut.mp4")) < len(audio_packets(clip))


def test_corrupt_and_missing_inputs_are_clear_errors(clip: Path, model_path: Path, tmp_path: Path, capsys) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: len(clip.read_bytes()) // 3])
    for bad in (garbage, truncated):
        code = main(["video", str(bad), "-o", str(tmp_path / "x.mp4"), "--style", str(model_path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "error:" in err[0] and "video" in err[0], err
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(BadVideo):
        probe(garbage)
    code = main(["video", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "x.mp4"), "--style", str(model_path)])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_interrupted_run_leaves_no_file_at_target(clip: Path, stylizer, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, target, stylizer, progress=progress, cancel=cancel)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"previous result")  # an existing target is untouched by a failed run
    with pytest.raises(UserError):
        stylize_video(clip, target, stylizer, start=100.0)
    assert target.read_bytes() == b"previous result"


def test_existing_output_needs_overwrite(clip: Path, model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    out.write_bytes(b"x")
    assert main(["video", str(clip), "-o", str(out), "--style", str(model_path)]) == 2
    assert main(["video", str(clip), "-o", str(tmp_path / "o.avi"), "--style", str(model_path)]) == 2


def test_frames_match_per_frame_stylization(clip: Path, stylizer, tmp_path: Path) -> None:
    """The video path uses the photo pipeline: decoded output is close to stylizing each frame directly."""
    stylize_video(clip, tmp_path / "o.mp4", stylizer, stabilize=False, audio=False)
    with av.open(str(clip)) as a, av.open(str(tmp_path / "o.mp4")) as b:
        first_in = next(a.decode(video=0)).to_ndarray(format="rgb24")
        first_out = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32) / 255
    expected = stylizer.stylize(first_in.astype(np.float32) / 255)
    assert np.abs(first_out - expected).mean() < 0.04  # H.264 + 4:2:0 loss only


def test_live_without_gui_or_camera_is_one_clear_line(model_path: Path, capsys) -> None:
    import cv2

    from restyle.video.live import _built_with_gui

    if _built_with_gui(cv2) and os.environ.get("DISPLAY"):
        pytest.skip("this machine has a GUI OpenCV and a display")
    code = main(["live", "--style", str(model_path), "--camera", "7"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1
    assert "pip install opencv-python" in err[0] or "display" in err[0] or "camera" in err[0]


@pytest.mark.slow
def test_ctrl_c_leaves_no_file_at_target(model_path: Path, tmp_path: Path) -> None:
    """A real SIGINT to ``restyle video``: exit 130, neither the target nor a temporary file remains."""
    src = write_clip(tmp_path / "long.mp4", moving_scene(48, 320, 240), fps=24, audio=True)
    target = tmp_path / "out" / "styled.mp4"
    cmd = ["video", str(src), "-o", str(target), "--style", str(model_path), "--threads", "1"]
    held = procs.HeldRun("video", cmd, at=12, stderr=subprocess.PIPE, text=True)
    try:
        held.wait_held()  # 12 of 48 frames written, the rest held back: the Ctrl-C lands mid-encode
        assert list(target.parent.glob(".styled.mp4.*"))  # the temporary file the interrupt must remove
        held.proc.send_signal(signal.SIGINT)
        _, err = held.proc.communicate(timeout=60)
    finally:
        held.close()
    assert held.proc.returncode == 130, err
    assert "interrupted" in err
    assert list(target.parent.iterdir()) == []


def test_ffmpeg_scales_frames_while_decoding_them(tmp_path: Path) -> None:
    from restyle.video.io import FrameTooLarge, read_frames
    from tests.video.clips import moving_scene, write_clip

    clip = write_clip(tmp_path / "r.mp4", moving_scene(3, 64, 48), fps=12, audio=False, rotation=90)
    info = probe(clip)
    assert (info.width, info.height) == (48, 64)  # upright
    frames = list(read_frames(info, size=(24, 32)))
    assert [f.rgb.shape for f in frames] == [(32, 24, 3)] * 3  # scaled by FFmpeg, then turned upright
    with pytest.raises(FrameTooLarge, match="64x48"):
        probe(clip, max_pixels=1000)
