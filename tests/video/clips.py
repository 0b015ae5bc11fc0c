"""Tiny videos generated with PyAV for the tests: moving textured scenes, optional AAC audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def moving_scene(frames: int, width: int, height: int, speed: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """A smooth random texture panning right and down by ``speed`` pixels per frame, plus a moving square."""
    rng = np.random.default_rng(seed)
    pad = int(abs(speed) * frames) + 8
    big_h, big_w = height + pad, width + pad
    coarse = rng.random((big_h // 6 + 2, big_w // 6 + 2, 3)).astype(np.float32)
    import cv2

    texture = cv2.resize(coarse, (big_w, big_h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    out = []
    for i in range(frames):
        off = int(round(i * speed))
        img = texture[off : off + height, off : off + width].copy()
        x = (4 + 2 * i) % max(1, width - 12)
        img[height // 3 : height // 3 + 10, x : x + 10] = (1.0, 0.2, 0.1)
        out.append((img * 255 + 0.5).astype(np.uint8))
    return out


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: int = 12,
    audio: bool = True,
    rotation: int = 0,
    pts: list[int] | None = None,
    container: str = "mp4",
) -> Path:
    """Encode ``frames`` (uint8 RGB) as H.264 with an AAC sine tone; ``pts`` (in 1/fps/10 units) for VFR."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "ultrafast"}
        tb = Fraction(1, fps * 10)
        video.codec_context.time_base = tb
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = pts[i] if pts is not None else i * 10
            frame.time_base = tb
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            seconds = len(frames) / fps
            n = int(16000 * seconds)
            t = np.arange(n) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = samples[start : start + 1024][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                frame.sample_rate = 16000
                frame.pts = start
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def video_summary(path: Path) -> tuple[int, Fraction, list[float]]:
    """(frames decoded, average rate, frame times in seconds)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = [float(f.time) for f in c.decode(s)]
        return len(times), s.average_rate, times


def claim_duration(path: Path, seconds: float) -> Path:
    """Rewrite the MP4 header durations (mvhd, tkhd, mdhd) to claim ``seconds``; the frames stay.

    What a hostile upload does to pass a duration check that trusts the header.
    """
    data = bytearray(path.read_bytes())
    movie_scale = None
    for box, v0, v1 in ((b"mvhd", 20, 28), (b"tkhd", 24, 32), (b"mdhd", 20, 28)):
        start = 0
        while (i := data.find(box, start)) >= 0:
            start = i + 4
            version = data[i + 4]
            if box == b"tkhd":
                scale = movie_scale
            else:
                scale = int.from_bytes(data[i + (16 if version == 0 else 24) : i + (20 if version == 0 else 28)], "big")
                if box == b"mvhd":
                    movie_scale = scale
            off, width = (v0, 4) if version == 0 else (v1, 8)
            data[i + off : i + off + width] = int(seconds * scale).to_bytes(width, "big")
    path.write_bytes(bytes(data))
    return path


def corrupt_midstream(path: Path, target: Path, offset: int = 14000, length: int = 2000) -> Path:
    """Copy ``path`` with ``length`` zero bytes written over the frame data ``offset`` bytes into ``mdat``.

    The header and the first frames stay intact, so a probe accepts the file
    and decoding fails part-way (about frame 13 of a ``moving_scene(48, 64, 48)``
    clip): the corrupt-mid-stream upload that must fail only its own job.
    """
    data = path.read_bytes()
    start = data.find(b"mdat") + 8 + offset
    assert start + length < len(data), "the clip is too short to damage mid-stream"
    target.write_bytes(data[:start] + bytes(length) + data[start + length :])
    return target
