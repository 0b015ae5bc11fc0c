"""Temporal stability vs style fidelity: per-frame, runtime-stabilized and temporally trained models.

    python -m bench.video_quality --model starry_night [--temporal-model PATH] [--frames 60] [--write docs/benchmarks.md]

For the first ``--frames`` frames of every clip in ``../shared/data/videos``
(shrunk to ``--max-size``), it reports the warping error (Lai et al. 2018;
``restyle.video.metrics``) with Farneback reference flow, which is *not*
the DIS flow the stabilizer uses, and the VGG Gram style loss against the
model's style image. Target: stabilized warping error <= 0.5x per-frame with
the style loss up by <= 10%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import SHARED, report  # noqa: E402
from restyle.imaging import decode_image, resize, to_float, to_uint8  # noqa: E402
from restyle.runtime import Registry, Stylizer  # noqa: E402
from restyle.video.io import even_size, probe, read_frames  # noqa: E402
from restyle.video.metrics import StyleLoss, TemporalReference, warping_error  # noqa: E402
from restyle.video.stabilize import Stabilizer  # noqa: E402

SECTION = "Video temporal stability"
VIDEOS = SHARED / "videos"


def load_clip(path: Path, frames: int, max_size: int) -> list[np.ndarray]:
    """The first ``frames`` frames, upright, shrunk to ``max_size``, uint8 RGB."""
    info = probe(path)
    w, h = even_size(info.width, info.height, max_size)
    out = []
    for frame in read_frames(info):
        rgb = frame.rgb
        if rgb.shape[:2] != (h, w):
            rgb = to_uint8(resize(to_float(rgb), h, w))
        out.append(rgb)
        if len(out) == frames:
            break
    return out


def style_image_for(stylizer: Stylizer, explicit: str | None) -> Path:
    """``--style-image``, else the training style image named in the model's metadata (looked up in shared)."""
    if explicit:
        return Path(explicit)
    images = stylizer.info.summary.get("style_images") or stylizer.info.summary.get("style_image") or ""
    if isinstance(images, list) and images:  # training metadata: [{"name", "file", "sha256"}, ...]
        images = images[0].get("file", "") if isinstance(images[0], dict) else images[0]
    name = str(images)
    for candidate in (Path(name), SHARED / "styles" / Path(name).name):
        if name and candidate.is_file():
            return candidate
    raise SystemExit(f"cannot find the style image of {stylizer.path.name} ({name!r}); pass --style-image")


def stylize_all(stylizer: Stylizer, frames: list[np.ndarray]) -> list[np.ndarray]:
    return [stylizer.stylize(to_float(f)) for f in frames]


def stylize_per_shot(stylizer: Stylizer, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Frozen instance-norm statistics per shot, as ``restyle video`` runs by default (``restyle.video.shots``)."""
    from restyle.runtime import StylizeOptions
    from restyle.video.shots import ShotNorm

    options = StylizeOptions()
    shots = ShotNorm(stylizer, options)
    out = []
    for f in frames:
        image = to_float(f)
        out.append(shots.stylizer_for(f, image).stylize(image, options))
    return out


def stabilize_all(frames: list[np.ndarray], stylized: list[np.ndarray]) -> list[np.ndarray]:
    stab = Stabilizer()
    return [stab(f, s) for f, s in zip(frames, stylized)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="style name or .onnx path (default: the default style)")
    parser.add_argument("--temporal-model", help=".onnx trained with --temporal-weight (row skipped if absent)")
    parser.add_argument("--style-image", help="style image for the style loss (default: from the model metadata)")
    parser.add_argument("--videos", default=str(VIDEOS), help="folder of clips")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    parser.add_argument("--max-size", type=int, default=384, help="long side the clips are shrunk to (default 384)")
    parser.add_argument("--quick", action="store_true", help="20 frames of two clips")
    parser.add_argument("--write", type=Path, help="merge the table into this markdown file")
    parser.add_argument("--note", default="", help="provenance of the models, added under the table")
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.frames = min(args.frames, 20)

    clips = sorted(p for p in Path(args.videos).glob("*") if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"))
    if not clips:
        print(f"no clips in {args.videos}; skipping {SECTION}")
        return 0
    clips = clips[:2] if args.quick else clips
    registry = Registry()
    try:
        model = registry.resolve(args.model, provider="auto")
    except Exception as exc:  # noqa: BLE001 - no model installed: say so, do not fail the whole bench run
        print(f"{SECTION}: skipped ({exc})")
        return 0
    temporal = None
    notes = [args.note] if args.note else []
    if args.temporal_model and Path(args.temporal_model).is_file():
        temporal = registry.resolve(args.temporal_model, provider="auto")
    else:
        notes.append(
            "Temporally trained model: not available"
            + (f" (no file at `{args.temporal_model}`)" if args.temporal_model else " (pass `--temporal-model PATH`)")
            + "; row skipped."
        )
    style_loss = StyleLoss(decode_image(style_image_for(model, args.style_image)))

    variants = [
        "input video (no stylization)",
        "per-frame",
        "per-frame + --stabilize",
        "per-shot statistics",
        "per-shot statistics + --stabilize",
    ]
    if temporal is not None:
        variants += ["temporal model", "temporal model + --stabilize"]
    werr: dict[str, list[float]] = {v: [] for v in variants}
    sloss: dict[str, list[float]] = {v: [] for v in variants}
    began = time.perf_counter()
    for clip in clips:
        frames = load_clip(clip, args.frames, args.max_size)
        ref = TemporalReference.from_frames(frames)
        outputs = {"input video (no stylization)": [to_float(f) for f in frames]}
        outputs["per-frame"] = stylize_all(model, frames)
        outputs["per-frame + --stabilize"] = stabilize_all(frames, outputs["per-frame"])
        outputs["per-shot statistics"] = stylize_per_shot(model, frames)
        outputs["per-shot statistics + --stabilize"] = stabilize_all(frames, outputs["per-shot statistics"])
        if temporal is not None:
            outputs["temporal model"] = stylize_all(temporal, frames)
            outputs["temporal model + --stabilize"] = stabilize_all(frames, outputs["temporal model"])
        for name, outs in outputs.items():
            werr[name].append(warping_error(outs, ref))
            if name != "input video (no stylization)":
                sloss[name].append(style_loss(outs[:: max(1, len(outs) // 5)]))  # 5 frames per clip suffice
        line = ", ".join(f"{k}: {werr[k][-1] * 1e3:.2f}" for k in outputs)
        print(
            f"{clip.name} ({len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}) warping error x1e3: {line}"
        )

    base_w = float(np.mean(werr["per-frame"]))
    base_s = float(np.mean(sloss["per-frame"]))
    rows = []
    for name in variants:
        w = float(np.mean(werr[name]))
        s = float(np.mean(sloss[name])) if sloss[name] else None
        rows.append(
            [
                name,
                f"{w * 1e3:.2f}",
                f"{w / base_w:.2f}x",
                f"{s:.3g}" if s is not None else "-",
                f"{(s / base_s - 1) * 100:+.1f}%" if s is not None else "-",
            ]
        )
    stab_ratio = float(np.mean(werr["per-frame + --stabilize"])) / base_w
    stab_style = float(np.mean(sloss["per-frame + --stabilize"])) / base_s - 1
    verdict = (
        f"Stabilized: warping error {stab_ratio:.2f}x per-frame (target <= 0.50x), "
        f"style loss {stab_style * 100:+.1f}% (target <= +10%): "
        + ("**target met**." if stab_ratio <= 0.5 and stab_style <= 0.10 else "**target not met**.")
    )
    note = (
        f"Model `{model.path.name}` ({model.info.arch}); {len(clips)} clip(s) from `{args.videos}`, "
        f"first {args.frames} frames, long side {args.max_size} px; {time.perf_counter() - began:.0f} s on "
        f"{model.providers[0]}. Warping error (Lai et al. 2018): mean over frame pairs of the squared RGB "
        "difference between each output frame and the previous output warped by the input's optical flow, over "
        "non-occluded pixels (forward-backward check), x1e3; reference flow is OpenCV Farneback, not the DIS flow "
        "the stabilizer uses. Style loss: VGG-19 Gram loss (training layers) against the style image, on 5 frames per clip shrunk to 256 px."
    )
    report(
        SECTION,
        ["variant", "warping error", "vs per-frame", "style loss", "style loss change"],
        rows,
        write=args.write,
        note=note,
        extra="\n".join([verdict, *notes]),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
