"""The fixed split of ``../shared/data/photos`` into training and held-out photos, by file name.

    python -m bench photo_split --link DIR   # a folder of links to the training photos, for `restyle train --data`

Held out, never trained on, never used to choose a recipe:

* all 24 Kodak photos (``kodak_*``), and
* every other photo whose name's SHA-256, read as an integer, is divisible by 10:
  37 of the 432 (people, animals, city, night, landscape, close-ups, flat colour:
  coco128, sunhays80, urban100, cbsd68, wikipedia, set14, mcmaster). The rule
  depends on the name alone, so the split never moves when photos are added;
  ``HELDOUT`` pins today's list and ``main`` checks the rule still gives it.

Recipes are chosen on training photos (``bench quality --photoset tuning``: 30 of them, spread evenly over the
sorted training list, so every source is in it); ``bench quality --photoset heldout`` reports on the held-out ones.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from bench.common import SHARED

HELDOUT = [
    "cbsd68_143090",
    "cbsd68_167062",
    "cbsd68_223061",
    "cbsd68_285079",
    "cbsd68_296059",
    "coco128_000000000042",
    "coco128_000000000071",
    "coco128_000000000078",
    "coco128_000000000196",
    "coco128_000000000349",
    "coco128_000000000514",
    "coco128_000000000623",
    "coco128_000000000650",
    "mcmaster_13",
    "mcmaster_14",
    "set14_barbara",
    "set14_foreman",
    "set14_pepper",
    "sunhays80_butte_sun_aidickeaxixvkuxv",
    "sunhays80_forest_needleleaf_sun_bjpryaalypkmqtnw",
    "sunhays80_mosque_outdoor_sun_ajpzxaexxhxeujve",
    "sunhays80_stadium_football_sun_bzdvbhfueegligps",
    "sunhays80_volcano_sun_bcduirgbwfrrefxx",
    "sunhays80_warehouse_sun_bggemsvcykyfkkyl",
    "sunhays80_waterfall_block_sun_bejnvnpltdmhbcsi",
    "urban100_img_001",
    "urban100_img_014",
    "urban100_img_027",
    "urban100_img_032",
    "urban100_img_070",
    "urban100_img_080",
    "urban100_img_098",
    "wikipedia_002",
    "wikipedia_004",
    "wikipedia_038",
    "wikipedia_045",
    "wikipedia_046",
]


def is_heldout(name: str) -> bool:
    """The rule, on a file name (``kodak_kodim01.jpg``)."""
    return name.startswith("kodak_") or int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 == 0


def photos(folder: Path | None = None) -> list[Path]:
    folder = folder or SHARED / "photos"
    return sorted(p for p in folder.glob("*.jpg"))


def heldout_photos(folder: Path | None = None) -> list[Path]:
    """Held-out photos: the 37 non-Kodak ones first, then the Kodak set."""
    found = [p for p in photos(folder) if is_heldout(p.name)]
    return [p for p in found if not p.name.startswith("kodak_")] + [p for p in found if p.name.startswith("kodak_")]


def training_photos(folder: Path | None = None) -> list[Path]:
    return [p for p in photos(folder) if not is_heldout(p.name)]


def tuning_photos(n: int = 30, folder: Path | None = None) -> list[Path]:
    """A fixed sample of ``n`` training photos for choosing recipes: every k-th of the sorted list (all sources)."""
    train = training_photos(folder)
    if len(train) <= n:
        return train
    return [train[round(i * (len(train) - 1) / (n - 1))] for i in range(n)]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench photo_split", description=__doc__.splitlines()[0])
    p.add_argument("--link", type=Path, help="make DIR a folder of links to the training photos")
    args, _ = p.parse_known_args(argv)
    held = [q.stem for q in heldout_photos() if not q.name.startswith("kodak_")]
    if held and held != HELDOUT:
        print("the rule no longer gives the pinned held-out list: photos were renamed or removed", file=sys.stderr)
        return 1
    train = training_photos()
    print(f"{len(train)} training photos, {len(heldout_photos())} held out ({len(held)} + Kodak)")
    if args.link:
        args.link.mkdir(parents=True, exist_ok=True)
        for q in train:
            link = args.link / q.name
            if not link.exists():
                link.symlink_to(q.resolve())
        print(f"linked into {args.link}")
    return 0
