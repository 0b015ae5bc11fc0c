"""How hard each protocol painting's style term pulls at the start: the number ``style_pull_max`` is set from.

    python -m bench new_style --protocol --pull [--set KEY=VALUE ...] [--write docs/benchmarks.md]

The style loss is a *relative* Gram error (``restyle.models.statistics``):
divided by the painting's own Gram energy. A faint painting (Dürer's *Young
Hare*: pale watercolour on paper, little energy at relu3_1 to relu5_1) so
makes the same photo several times as far from its style as any other
painting, and at the same style weight the style term outweighs the content
term by as much: the photo dissolves. ``Trainer.style_pull`` measures that
pull, the style loss of untouched photos (fixed crops of the two bundled Kodak
photos, ``restyle.train.pull``: the same for every training folder) against
the painting; ``--add-style`` lowers the weight so that weight x pull stays
within what the defaults were chosen on.

This prints each painting's pull and derives the limit from the **tuning**
paintings alone: the largest pull among them times the default style weight.
The held-out paintings are only reported, with the weight the limit gives
them.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench.common import report
from bench.new_style import add_style_config
from bench.new_style_protocol import (
    HELDOUT,
    KIND,
    TUNING,
    painting_path,
    parse_overrides,
    protocol_training_photos,
    split_of,
)

SECTION = "Your own style from any painting: the style pull"


def pulls(names: tuple[str, ...], base: str, overrides: dict | None = None) -> dict[str, float]:
    """Each painting's ``Trainer.style_pull`` with the ``--add-style`` defaults and ``overrides``, no limit
    applied."""
    from restyle.train.loop import Trainer

    work = Path(tempfile.mkdtemp(prefix="restyle-pull-"))
    try:
        data = protocol_training_photos(work)  # the trainer needs a folder; the pull does not read it
        out = {}
        for name in names:
            values = {**(overrides or {}), "style_pull_max": 0.0}
            cfg = add_style_config(painting_path(name), base, data, work / name, values, name)
            out[name] = Trainer(cfg).style_pull()
            print(f"{name}: pull {out[name]:.2f}", flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def limit_from_tuning(found: dict[str, float], style_weight: float) -> float:
    """The limit: the default style weight times the largest pull among the tuning paintings measured."""
    return style_weight * max(v for k, v in found.items() if k in TUNING)


def main(argv: list[str]) -> int:
    from restyle.recipes import ADD_STYLE_DEFAULTS

    p = argparse.ArgumentParser(prog="python -m bench new_style --protocol --pull")
    p.add_argument("--base", default="classics")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a recipe override (style_size=256)")
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    args, _ = p.parse_known_args(argv)
    overrides = parse_overrides(args.set)
    found = pulls(TUNING + HELDOUT, args.base, overrides)
    weight = float(ADD_STYLE_DEFAULTS["style_weight"])
    limit = limit_from_tuning(found, weight)
    in_use = ADD_STYLE_DEFAULTS.get("style_pull_max", 0)
    rows = [
        [name, KIND[name], split_of(name), f"{pull:.2f}", f"{weight * pull:.1f}", f"{min(weight, limit / pull):.2f}"]
        for name, pull in sorted(found.items(), key=lambda kv: kv[1])
    ]
    caption = (
        f"`python -m bench new_style --protocol --pull`: each painting's style pull, the style loss of "
        f"8 fixed 128 px crops of the two bundled Kodak photos (`restyle.train.pull`) against the painting, with the "
        f"`--add-style` defaults{' and ' + str(overrides) if overrides else ''}. The limit is the default style "
        f"weight ({weight:g}) times the largest pull among the tuning paintings: **{limit:.1f}** (the recipe's `style_pull_max`: {in_use:g}). "
        f"'weight': the style weight `--add-style` trains that painting with, lowered where weight x pull would "
        f"pass the limit. Sorted by pull."
    )
    header = ["painting", "kind", "split", "pull", "weight x pull", "weight"]
    report(SECTION, header, rows, args.write.with_name("quality.md") if args.write else None, note=caption)
    return 0
