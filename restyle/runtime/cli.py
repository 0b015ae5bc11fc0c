"""``restyle stylize`` and ``restyle styles``.

Batch semantics, chosen so a long run is safe to repeat: outputs are named
``STEM_STYLE.FORMAT`` (never an input's own path), existing outputs are kept
unless ``--overwrite`` (so a re-run resumes), every write is atomic, a bad
file is reported and skipped, and the exit code is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from restyle.errors import InputNotFound, UserError
from restyle.imaging import FORMATS, IMAGE_SUFFIXES, decode_image, normalize_format, save_image
from restyle.runtime.options import StylizeOptions
from restyle.runtime.providers import PROVIDERS
from restyle.runtime.registry import Registry

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stylize", help="stylize photos", description="Stylize photos with an ONNX style model.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, help="output folder, or a file name for a single input")
    p.add_argument("--style", help="style name (see 'restyle styles') or path to a .onnx model")
    p.add_argument("--strength", type=float, default=1.0, help="0 = original photo, 1 = full style (default)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours, stylize luminance only")
    p.add_argument("--max-size", type=int, help="shrink so the longest side is at most this many pixels")
    p.add_argument(
        "--style-scale",
        default="1",
        help="stroke size: stylize at 1/SCALE of the size and upsample guided by the photo; 'auto' = same look at any size",
    )
    p.add_argument("--style-weights", help="multi-style models: 'name=0.7,other=0.3' or '0.7,0.3'")
    p.add_argument("--device", choices=PROVIDERS, default="auto", help="execution provider (default auto)")
    p.add_argument("--threads", type=int, help="CPU threads per inference (default: all cores)")
    p.add_argument("--format", choices=sorted(FORMATS), help="output format (default: from -o, else jpg)")
    p.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality 1..100 (default 92)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders (mirrored under -o)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: keep them)")
    p.add_argument("--models", help="extra models directory (default: $RESTYLE_MODELS)")
    p.set_defaults(func=run_stylize)

    s = subparsers.add_parser("styles", help="list installed style models", description="List style models.")
    s.add_argument("--models", help="extra models directory (default: $RESTYLE_MODELS)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run_styles)


def cli_registry(models: str | None) -> Registry:
    """The registry of a command-line run: ``--models``, else ``$RESTYLE_MODELS``, via the one settings object.

    The runtime reads no environment itself; ``RuntimeSettings`` does, for every front end alike.
    """
    from restyle.settings import RuntimeSettings

    env = RuntimeSettings()
    return Registry(user_dir=models or env.models, cache_dir=env.cache)


# -- styles -----------------------------------------------------------------
def _summary_text(summary: dict) -> str:
    parts = [f"{k}={v}" for k, v in summary.items() if isinstance(v, (int, float, str)) and len(str(v)) <= 40]
    return ", ".join(parts[:6])


def run_styles(args: argparse.Namespace) -> int:
    """One row per style a user can name; a style inside a multi-style model shows that model."""
    reg = cli_registry(args.models)
    rows = []
    for name in reg.style_names():
        model, inner = reg.lookup(name)
        info = reg.info(model)
        rows.append((name, model if inner else "", info))
    if args.json:
        out = [
            {
                "name": name,
                "model": info.name,
                "arch": info.arch,
                "styles": info.style_names,
                "size_bytes": info.size_bytes,
                "precision": info.precision,
                "source": info.source,
                "summary": info.summary,
            }
            for name, _model, info in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    if not rows:
        print("no style models installed (bundled: restyle/styles/, user: --models DIR or $RESTYLE_MODELS)")
        return 0
    default = reg.default_name()
    print(f"{'name':<24} {'model':<12} {'arch':<8} {'size':>8}  {'source':<8} training")
    for name, model, info in rows:
        mark = "*" if name == default else " "
        size = f"{info.size_bytes / 1e6:.1f} MB"
        print(
            f"{mark}{name:<23} {model or '-':<12} {info.arch:<8} {size:>8}  {info.source:<8} {_summary_text(info.summary)}"
        )
    print("* default; styles that share a model can be blended: --style-weights 'a=0.5,b=0.5'")
    return 0


# -- stylize ----------------------------------------------------------------
@dataclass
class PhotoTarget:
    """One photo of a ``restyle stylize`` run and the file its picture goes to (a queued job is ``restyle.jobs.store.Job``)."""

    source: Path
    target: Path


@dataclass
class Report:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _parse_scale(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--style-scale must be a number or 'auto', not {text!r}") from None


def _parse_weights(text: str | None) -> dict[str, float] | list[float] | None:
    if not text:
        return None
    try:
        if "=" in text:
            return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(","))}
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--style-weights must look like 'a=0.7,b=0.3' or '0.7,0.3', not {text!r}") from None


def collect(
    inputs: list[str], recursive: bool, exclude: Path | None = None
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(file, path relative to its input root) for every image; missing inputs as failures.

    Files under ``exclude`` (the output folder) are skipped when a folder is
    scanned: ``restyle stylize DIR -o DIR/out`` run twice must not stylize its
    own outputs.
    """
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[Path, str]] = []
    skip = exclude.resolve() if exclude is not None else None
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            for f in sorted(path.glob(pattern)):
                if skip is not None and skip != path.resolve() and f.resolve().is_relative_to(skip):
                    continue  # inside an output folder nested in the input folder
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                    found.append((f, f.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            missing.append((path, str(InputNotFound(f"no such file or folder: {path}"))))
    return found, missing


def plan_targets(files: list[tuple[Path, Path]], output: Path, style: str, fmt: str | None) -> list[PhotoTarget]:
    """Output paths: exact for one file with an image suffix, else ``OUT/REL/STEM_STYLE.EXT``."""
    if len(files) == 1 and output.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"} and not output.is_dir():
        targets = [PhotoTarget(files[0][0], output)]
    else:
        ext = EXTENSIONS[normalize_format(fmt or "jpg")]
        targets = []
        taken: set[Path] = set()
        for source, rel in files:
            target = output / rel.parent / f"{rel.stem}_{style}{ext}"
            if target in taken:  # a.png and a.jpg in one folder: keep both
                target = output / rel.parent / f"{rel.stem}-{rel.suffix.lstrip('.').lower()}_{style}{ext}"
            taken.add(target)
            targets.append(PhotoTarget(source, target))
    inputs = {f.resolve() for f, _ in files}
    for planned in targets:
        if planned.target.resolve() in inputs:
            raise UserError(f"output {planned.target} would overwrite an input; choose another -o")
    return targets


def _ensure_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {directory}: {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise UserError(f"output {directory} is not a folder")


def run_stylize(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    options = StylizeOptions(
        strength=args.strength,
        preserve_color=args.preserve_color,
        max_size=args.max_size,
        style_scale=_parse_scale(args.style_scale),
        style_weights=_parse_weights(args.style_weights),
    )
    reg = cli_registry(args.models)
    stylizer, inner_style = reg.resolve_style(args.style, provider=args.device, threads=args.threads)
    if inner_style is not None and options.style_weights is None:  # "--style udnie" inside a multi-style model
        options = dataclasses.replace(options, style_weights=inner_style)
    style_label = Path(args.style).stem if args.style else (inner_style or stylizer.info.name)
    output = Path(args.output)
    files, missing = collect(
        args.inputs, args.recursive, exclude=output if output.is_dir() or not output.suffix else None
    )
    fmt = args.format
    if fmt is None and len(files) == 1 and output.suffix and not output.is_dir():
        fmt = output.suffix
    targets = plan_targets(files, output, style_label, fmt)
    pil_fmt = normalize_format(fmt or "jpg")
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, not {args.quality}")
    report = Report(failed=list(missing))
    for _path, message in missing:
        print(f"error: {message}", file=sys.stderr)
    if targets:
        _ensure_writable(targets[0].target.parent)
    bar = tqdm(targets, unit="img", disable=len(targets) < 2, file=sys.stderr, dynamic_ncols=True)
    for planned in bar:
        if planned.target.exists() and not args.overwrite:
            report.skipped += 1
            continue
        try:
            image = decode_image(planned.source, max_size=options.max_size)  # shrinks while still 8-bit
            result = stylizer.stylize(image, options)
            planned.target.parent.mkdir(parents=True, exist_ok=True)
            save_image(result, planned.target, quality=args.quality, fmt=pil_fmt)
            report.done += 1
        except UserError as exc:
            report.failed.append((planned.source, str(exc)))
            tqdm.write(f"error: {exc}", file=sys.stderr)
        except OSError as exc:
            report.failed.append((planned.source, str(exc)))
            tqdm.write(f"error: cannot write {planned.target}: {exc.strerror or exc}", file=sys.stderr)
    bar.close()
    elapsed = time.perf_counter() - start
    line = f"stylized {report.done}, kept {report.skipped} existing, failed {len(report.failed)} in {elapsed:.1f} s"
    if len(targets) == 1 and report.done == 1:
        line += f" -> {targets[0].target}"
    print(line, file=sys.stderr)
    return 1 if report.failed else 0
