"""``python -m restyle.reference.gallery --out docs``: every reference figure plus ``reference.md``, in one run.

How much work each figure gets is a profile of :mod:`restyle.reference.budget`
(``--profile publication`` by default; ``preview`` to check everything renders
at a fraction of the cost). Every figure's method, paper, network, layer,
budget and measured time go to ``OUT/reference/gallery.json``, and
``OUT/reference.md`` is written from that file, so each caption carries the
numbers of the run that drew the figure. ``--only KEY,...`` renders some
figures and keeps the others' entries.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from restyle.errors import UserError
from restyle.reference import budget as bd
from restyle.reference.gallery.build import build


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, parsed: ``out`` (Path), ``profile`` (a GalleryBudget), ``only`` (set of keys or None)."""
    ap = argparse.ArgumentParser(prog="python -m restyle.reference.gallery", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("docs"), help="docs folder (figures go to OUT/reference/)")
    ap.add_argument("--profile", choices=sorted(bd.PROFILES), default="publication", help="budget profile")
    ap.add_argument("--quick", action="store_true", help="same as --profile preview")
    ap.add_argument("--only", help="comma-separated figure keys to render (the others keep their entries)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args(argv)
    args.profile = bd.PROFILES["preview" if args.quick else args.profile]
    args.only = {k.strip() for k in args.only.split(",") if k.strip()} if args.only else None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        print(build(args.out, args.profile, args.only))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
