"""Does the photo's shape survive? A number for what the eye sees on the new-style protocol's saved tiles.

    python -m bench new_style --protocol --tone RECIPE [--minute 2] [--write docs/benchmarks.md]

The protocol's content distance (VGG relu4_2) passes styles that by eye lose
the photo: on studies on bare paper (Dürer's hare, the natural-history
plates) the statues of the tuning photo fade into paper, while the peer keeps
them as brown figures, and relu4_2 moves further under the peer's recolouring
than under our fading. What the eye compares there is the photo's tones: where
it is dark and where light, at the scale of whole objects. This measures that
directly: SSIM (scikit-image) between the photo's and the output's luminance,
both resized to 64 px on the longer side, so brush texture and colour do not
count and large shapes do. 1: the photo's tonal layout unchanged.

It reads back the one photo per painting the protocol keeps as tiles (the
scores use six): a diagnostic beside the protocol's rule, not part of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import report
from bench.new_style_compare import tiles
from bench.new_style_protocol import KIND, split_of

SECTION = "Your own style from any painting: tone structure kept"
SIDE = 64  # px, the longer side both images are compared at: objects, not strokes


def tone(image: np.ndarray) -> np.ndarray:
    """Luminance (Rec. 601) of an ``HxWx3`` float image, area-resized to ``SIDE`` px on its longer side."""
    import cv2

    from restyle.imaging import long_side_size, resize

    gray = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return resize(gray, *long_side_size(*gray.shape, SIDE))


def tone_structure(output: np.ndarray, photo: np.ndarray) -> float:
    """SSIM of the two images' tones (:func:`tone`); the output is resized to the photo's shape first."""
    from skimage.metrics import structural_similarity

    from restyle.imaging import resize

    output = resize(output, *photo.shape[:2])
    return float(structural_similarity(tone(photo), tone(output), data_range=1.0))


def main(argv: list[str]) -> int:
    from restyle.imaging import decode_image

    p = argparse.ArgumentParser(prog="python -m bench new_style --protocol --tone RECIPE")
    p.add_argument("--tone", required=True, metavar="RECIPE", help="a recipe id (a folder under --out)")
    p.add_argument("--minute", default="2", help="the mark to measure (default 2)")
    p.add_argument("--out", type=Path, default=Path("out/new-style-protocol"))
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    args, _ = p.parse_known_args(argv)
    folder = args.out / args.tone
    if not (folder / "recipe.json").is_file():
        raise SystemExit(f"--tone: no protocol results for recipe {args.tone} under {args.out}")
    mark = f"{float(args.minute):g}min"
    rows, kept = [], []
    for name in sorted({p.name.split("__")[0] for p in folder.glob("*__*") if p.is_dir()}):
        where = tiles(folder, name)
        if where is None or not (where / f"{mark}.jpg").is_file() or not (where / "peer.jpg").is_file():
            continue
        photo = decode_image(where / "photo.jpg")
        ours = tone_structure(decode_image(where / f"{mark}.jpg"), photo)
        peer = tone_structure(decode_image(where / "peer.jpg"), photo)
        kept.append(ours >= peer)
        rows.append([name, KIND.get(name, "-"), split_of(name), f"{ours:.2f}", f"{peer:.2f}", f"{ours - peer:+.2f}"])
    if not rows:
        raise SystemExit(f"--tone: recipe {args.tone} has no {mark} tile with the peer's beside it")
    rows.sort(key=lambda r: float(r[-1]))
    note = (
        f"`python -m bench new_style --protocol --tone {args.tone}`: for each painting of recipe {args.tone}, the SSIM "
        f"of the photo's and the output's tones (luminance at {SIDE} px on the longer side: whole objects, not "
        f"strokes; 1 = the photo's tonal layout unchanged) at {args.minute} min, ours and the peer's, on the one photo "
        "the protocol keeps as a tile. A diagnostic beside the protocol's rule, not part of it; sorted by the "
        f"difference. Ours keeps as much as the peer or more on {sum(kept)} of {len(kept)} paintings."
    )
    header = ["painting", "kind", "split", "ours", "peer", "ours - peer"]
    report(SECTION, header, rows, args.write.with_name("quality.md") if args.write else None, note=note)
    return 0
