"""``restyle video IN -o OUT.mp4`` and ``restyle live``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restyle.errors import UserError
from restyle.runtime.options import StylizeOptions
from restyle.runtime.providers import PROVIDERS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "video",
        help="stylize a video file",
        description="Stylize a video: H.264 MP4 out, same frames, frame rate and (copied) audio as the input.",
    )
    p.add_argument("input", help="video file (anything FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, help="output .mp4 (written atomically)")
    p.add_argument("--style", help="style name (see 'restyle styles') or path to a .onnx model")
    p.add_argument("--max-size", type=int, help="shrink so the longest side is at most this many pixels")
    p.add_argument(
        "--stabilize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="blend in the previous frame along optical flow to stop flicker (default on)",
    )
    p.add_argument("--start", type=float, default=0.0, help="start at this many seconds")
    p.add_argument("--duration", type=float, help="stylize only this many seconds")
    p.add_argument("--strength", type=float, default=1.0, help="0 = original video, 1 = full style (default)")
    p.add_argument("--preserve-color", action="store_true", help="keep the video's colours, stylize luminance only")
    p.add_argument("--no-audio", dest="audio", action="store_false", help="drop the audio track")
    p.add_argument("--device", choices=PROVIDERS, default="auto", help="execution provider (default auto)")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--models", help="extra models directory (default: $RESTYLE_MODELS)")
    p.add_argument("--verbose", action="store_true", help="print where the time went, stage by stage")
    p.set_defaults(func=run_video)

    live = subparsers.add_parser(
        "live",
        help="stylize the camera feed in a window",
        description="Stylized camera preview. Keys: n/p or 1-9 switch style, s toggles stabilization, q/Esc quits.",
    )
    live.add_argument("--camera", default="0", help="camera index or device path / stream URL (default 0)")
    live.add_argument("--style", help="style name or path to a .onnx model (default: the first style)")
    live.add_argument("--max-size", type=int, default=640, help="longest side of the stylized picture (default 640)")
    live.add_argument("--no-stabilize", dest="stabilize", action="store_false", help="no flow-based blending")
    live.add_argument("--device", choices=PROVIDERS, default="auto", help="execution provider (default auto)")
    live.add_argument("--models", help="extra models directory (default: $RESTYLE_MODELS)")
    live.add_argument("--verbose", action="store_true", help="on exit, print where the time went, stage by stage")
    live.set_defaults(func=run_live)


def run_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from restyle.runtime.cli import cli_registry
    from restyle.video.io import probe
    from restyle.video.stylize import expected_frames, stylize_video

    source, target = Path(args.input), Path(args.output)
    if target.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise UserError(f"output {target} must end in .mp4 (H.264 MP4 is what browsers play)")
    if target.exists() and not args.overwrite:
        raise UserError(f"{target} exists; pass --overwrite to replace it")
    if source.exists() and target.exists() and source.resolve() == target.resolve():
        raise UserError("the output must not be the input")
    info = probe(source)
    stylizer, inner = cli_registry(args.models).resolve_style(args.style, provider=args.device, threads=args.threads)
    options = StylizeOptions(
        strength=args.strength, preserve_color=args.preserve_color, max_size=args.max_size, style_weights=inner
    )
    total = expected_frames(info, args.start, args.duration)
    bar = tqdm(total=total or None, unit="frame", file=sys.stderr, dynamic_ncols=True, desc=source.name)

    def progress(done: int, expected: int) -> None:
        if expected > (bar.total or 0):
            bar.total = expected
        bar.update(done - bar.n)

    try:
        result = stylize_video(
            source,
            target,
            stylizer,
            options,
            stabilize=args.stabilize,
            start=args.start,
            duration=args.duration,
            audio=args.audio,
            progress=progress,
            info=info,
        )
    finally:
        bar.close()
    cuts = f", {result.scene_cuts} scene cut(s)" if args.stabilize else ""
    print(
        f"stylized {result.frames} frames ({result.width}x{result.height}) at {result.fps:.1f} frames/s"
        f"{cuts}, audio {result.audio} -> {result.path}",
        file=sys.stderr,
    )
    if args.verbose:
        print(result.breakdown(), file=sys.stderr)
    return 0


def run_live(args: argparse.Namespace) -> int:
    from restyle.video.live import run_live as live

    return live(
        camera=args.camera,
        style=args.style,
        max_size=args.max_size,
        stabilize=args.stabilize,
        device=args.device,
        models=args.models,
        verbose=args.verbose,
    )
