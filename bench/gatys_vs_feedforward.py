"""Gatys (L-BFGS, Adam) vs the feed-forward models: seconds to a finished image, and the losses each reaches.

The speed/quality trade-off that motivates the product. Every result (the
optimized images and the networks' outputs) is scored by ONE loss function,
the reference suite's Gatys losses (content at relu4_2, Gram style at
relu1_1 ... relu5_1, relative errors, style image resized to the output
size), so the numbers compare across methods. The feed-forward networks were
trained on other layers and weights; scoring them on Gatys' objective is the
point: it asks how close a single forward pass gets to what the slow
optimization reaches. Photo: the bundled Kodak sample, centre-cropped square.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SECTION = "Gatys vs feed-forward"
SAMPLE = Path(__file__).resolve().parent.parent / "restyle" / "assets" / "sample.jpg"
HEADER = ["method", "size", "budget", "seconds", "content loss", "style loss", "c + 100 s"]


@dataclass
class FeedForward:
    """One feed-forward model to compare, with the style it was trained on."""

    label: str
    path: Path
    style_name: str  # the style selected in a multi-style model
    style_image: Path


def square_photo(path: Path, size: int) -> np.ndarray:
    """HxWx3 float32 [0, 1]: the largest centred square, area-resized to ``size`` (what every method gets)."""
    from restyle.imaging import decode_image, resize

    img = decode_image(path)
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return resize(np.ascontiguousarray(img[y : y + s, x : x + s]), size, size)


def to_tensor(image: np.ndarray):  # -> torch.Tensor (torch imported lazily, as in the other benches)
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()


class GatysScore:
    """The one shared measure: Gatys' content and style losses of an image against this photo and style.

    Targets are computed exactly as ``gatys.StyleTransfer`` computes them, so
    for the Gatys rows the score equals the optimizer's own final loss terms.
    """

    def __init__(self, content, style) -> None:
        import torch

        from restyle.reference import gatys

        self.net = gatys.vgg19()
        size = max(content.shape[-2:])
        with torch.no_grad():
            self.content_target = self.net(content, [gatys.CONTENT_LAYER])[gatys.CONTENT_LAYER]
        self.style_targets = gatys.style_targets(self.net, [style], None, size)

    def __call__(self, image) -> tuple[float, float]:
        import torch

        from restyle.reference import gatys
        from restyle.reference.losses import content_loss, gram_distance, gram_matrix

        with torch.no_grad():
            feats = self.net(image.clamp(0, 1))
            lc = content_loss(feats[gatys.CONTENT_LAYER], self.content_target)
            ls = gram_distance({k: gram_matrix(feats[k]) for k in gatys.STYLE_LAYERS}, self.style_targets)
        return float(lc), float(ls)


def style_image_for(path: Path, style_name: str | None) -> tuple[str, Path | None]:
    """(style name, its image in shared/styles) from the model's metadata; the image is None when not found."""
    from bench.common import SHARED
    from restyle.runtime.model_info import read_model_info

    info = read_model_info(path)
    name = style_name or info.style_names[0]
    candidates: list[str] = []
    for entry in info.summary.get("style_images") or []:  # [{"name", "file", "sha256"}] from training
        if isinstance(entry, dict) and entry.get("name") in (name, None):
            candidates.append(str(entry.get("file") or ""))
        elif isinstance(entry, str):
            candidates.append(entry)
    candidates += [f"{name}.jpg", f"{name}.png"]
    for c in candidates:
        for p in (Path(c), SHARED / "styles" / Path(c).name):
            if c and p.is_file():
                return name, p
    return name, None


def feedforward_models(args: argparse.Namespace) -> list[FeedForward]:
    """``--model`` paths, else every bundled model (restyle/styles/*.onnx), each with its style image."""
    from restyle.runtime import Registry

    reg = Registry()
    if args.model:  # paths, or registered names (video_quality reads the same flag that way)
        paths = [
            (Path(m).stem, Path(m) if m.endswith(".onnx") or os.sep in m else reg.info(m).path) for m in args.model
        ]
    else:  # every bundled style, also those that share one multi-style model
        paths = [(name, reg.info(name).path) for name in reg.style_names() if reg.info(name).source == "bundled"]
    out = []
    for label, path in paths:
        name, image = style_image_for(path, None)
        if label in reg.style_names() and reg.lookup(label)[1] is not None:  # a style inside a multi-style model
            name = label
            from bench.common import SHARED

            shared = SHARED / "styles" / f"{label}.jpg"
            image = shared if shared.is_file() else image
        if args.style_image:
            image = Path(args.style_image)
        if image is None:
            print(f"  skipping {label}: no style image found for {name!r} (pass --style-image)")
            continue
        out.append(FeedForward(label, path, name, image))
    return out


def run_gatys(content, style, size: int, optimizer: str, steps: int, score: GatysScore) -> list[str]:
    """One Gatys run from the content photo with the reference defaults; seconds include computing the targets."""
    from restyle.reference import gatys

    cfg = gatys.GatysConfig(size=size, steps=steps, optimizer=optimizer)
    t0 = time.perf_counter()
    result = gatys.StyleTransfer(cfg).generate(content, style, progress=False)
    elapsed = time.perf_counter() - t0
    lc, ls = score(result.image)
    label = {"lbfgs": "Gatys, L-BFGS", "adam": "Gatys, Adam (lr 0.02)"}[optimizer]
    return _row(label, size, f"{steps} steps", elapsed, lc, ls)


def run_feedforward(
    model: FeedForward, photo: np.ndarray, repeats: int, score: GatysScore, threads: int | None
) -> list[str]:
    """Median seconds of ``Stylizer.stylize`` after a warm-up (the session is loaded once, as the API does)."""
    from restyle.runtime import Registry, StylizeOptions, Stylizer

    reg = Registry()
    bundled = model.label in reg.style_names() and reg.info(model.label).path == model.path
    stylizer = reg.get(model.label, threads=threads) if bundled else Stylizer(model.path, threads=threads)
    options = StylizeOptions(style_weights=model.style_name if len(stylizer.style_names) > 1 else None)
    out = stylizer.stylize(photo, options)  # warm-up: ORT's shape-specific kernels
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = stylizer.stylize(photo, options)
        times.append(time.perf_counter() - t0)
    lc, ls = score(to_tensor(out))
    return _row(
        f"feed-forward `{model.label}` ({stylizer.info.arch})",
        photo.shape[0],
        "1 pass",
        statistics.median(times),
        lc,
        ls,
    )


def _row(method: str, size: int, budget: str, seconds: float | None, lc: float, ls: float) -> list[str]:
    secs = "-" if seconds is None else f"{seconds:.3f}" if seconds < 1 else f"{seconds:.1f}"
    return [method, f"{size}x{size}", budget, secs, f"{lc:.3f}", f"{ls:.4f}", f"{lc + 100 * ls:.2f}"]


def main(argv: list[str] | None = None) -> None:
    # allow_abbrev=False: `python -m bench` passes every benchmark's flags, and train_speed's --size must not
    # be read as an abbreviation of --sizes.
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    p.add_argument("--write", type=Path, help="merge the table into this markdown file")
    p.add_argument("--quick", action="store_true", help="256 px only, L-BFGS 20 and Adam 60 steps (a smoke test)")
    p.add_argument("--sizes", help="comma-separated square sizes (default 256,512; quick 256)")
    p.add_argument("--lbfgs-steps", type=int, default=None, help="L-BFGS iterations (default 100, quick 20)")
    p.add_argument("--adam-steps", type=int, default=None, help="Adam steps (default 300, quick 60)")
    p.add_argument("--repeats", type=int, default=3, help="timed feed-forward runs per size (median)")
    p.add_argument(
        "--model", action="append", help="style name or .onnx to compare (repeatable; default: the bundled styles)"
    )
    p.add_argument("--note", default="", help="provenance of the models, added under the table")
    p.add_argument("--style-image", help="style image (default: the first model's, from its metadata)")
    p.add_argument("--photo", type=Path, default=SAMPLE, help="content photo (default: the bundled Kodak sample)")
    p.add_argument(
        "--threads", type=int, help="torch and ONNX Runtime intra-op threads for both methods (default: all cores)"
    )
    args, _ = p.parse_known_args(argv)
    import torch

    before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)  # restored below: `python -m bench` runs other benchmarks after this
    try:
        run(args)
    finally:
        torch.set_num_threads(before)


def run(args: argparse.Namespace) -> None:
    """Every size: score the photo itself, then each feed-forward model, then Gatys with each optimizer."""
    import torch

    from bench.common import report
    from restyle.imaging import decode_image
    from restyle.reference import gatys

    sizes = [int(s) for s in (args.sizes or ("256" if args.quick else "256,512")).split(",")]
    lbfgs = args.lbfgs_steps or (20 if args.quick else 100)
    adam = args.adam_steps or (60 if args.quick else 300)
    models = feedforward_models(args)
    if models:
        style_path = models[0].style_image
        skipped = [m.label for m in models if m.style_image.resolve() != style_path.resolve()]
        models = [m for m in models if m.label not in skipped]
        if skipped:
            print(f"  not compared (trained on another style than {style_path.name}): {', '.join(skipped)}")
    elif args.style_image:
        style_path = Path(args.style_image)
    else:
        raise SystemExit("no feed-forward model: none bundled in restyle/styles; pass --model X.onnx")
    style = to_tensor(decode_image(style_path))
    gatys.vgg19()  # load the VGG19 weights once, outside every timing

    rows = []
    for size in sizes:
        photo = square_photo(args.photo, size)
        content = to_tensor(photo)
        score = GatysScore(content, style)
        lc, ls = score(content)
        rows.append(_row("the photo itself (no stylization)", size, "-", None, lc, ls))
        print("  ", rows[-1], flush=True)
        for model in models:
            rows.append(run_feedforward(model, photo, args.repeats, score, args.threads))
            print("  ", rows[-1], flush=True)
        for optimizer, steps in (("lbfgs", lbfgs), ("adam", adam)):
            rows.append(run_gatys(content, style, size, optimizer, steps, score))
            print("  ", rows[-1], flush=True)

    threads = f"{torch.get_num_threads()} torch / {args.threads or 'default'} ORT threads"
    cpu = f"{platform.machine()}, {os.cpu_count()} cores, {threads}"
    cmd = "python -m bench gatys_vs_feedforward" + (" --quick" if args.quick else "")
    cmd += f" --lbfgs-steps {lbfgs} --adam-steps {adam}" if args.lbfgs_steps or args.adam_steps else ""
    cmd += f" --threads {args.threads}" if args.threads else ""
    cmd += f" --sizes {args.sizes}" if args.sizes else ""
    cmd += "".join(f" --model {Path(m).name}" for m in args.model or [])
    note = (
        f"`{cmd}`: photo `{args.photo.name}` (centre square), style `{style_path.name}`, CPU only ({cpu}). "
        "Seconds to a finished image: Gatys from loading the photo's targets to the last step (VGG19 already "
        f"loaded), {gatys.CONTENT_LAYER} content, default weights (content 1, style 100, TV 1), init = photo; "
        f"feed-forward the median of {args.repeats} `Stylizer.stylize` calls after a warm-up (ONNX Runtime). "
        "Losses are the reference suite's Gatys losses for every row (relative errors: content at relu4_2, Gram "
        "style at relu1_1..relu5_1, style image resized to the output size); `c + 100 s` is Gatys' objective "
        "without TV. Lower is better; the feed-forward networks were trained on other layers and weights."
    )
    report(SECTION, HEADER, rows, args.write, note, extra=args.note)


if __name__ == "__main__":
    main()
