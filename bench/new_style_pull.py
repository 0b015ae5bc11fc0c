"""How hard each protocol painting's style term pulls at the start: the number ``style_pull_max`` is set from.

    python -m bench new_style --protocol --pull [--write docs/benchmarks.md] [--data PHOTOS]

The style loss is a *relative* Gram error (``restyle.models.statistics``):
divided by the painting's own Gram energy. A faint painting (Dürer's *Young
Hare*: pale watercolour on paper, little energy at relu3_1 to relu5_1) so
makes the same photo several times as far from its style as any other
painting, and at the same style weight the style term outweighs the content
term by as much: the photo dissolves. ``Trainer.style_pull`` measures that
pull, the style loss of untouched training photos (the run's fixed batch)
against the painting; ``--add-style`` lowers the weight so that weight x pull
stays within what the defaults were chosen on.

This prints each painting's pull on the protocol's training photos and
derives the limit from the **tuning** paintings alone: the largest pull among
them times the default style weight. The held-out paintings are only
reported, with the weight the limit gives them.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench.common import report
from bench.new_style import add_style_config
from bench.new_style_protocol import HELDOUT, KIND, TUNING, painting_path, protocol_training_photos, split_of

SECTION = "Your own style from any painting: the style pull"


def pulls(names: tuple[str, ...], base: str, data: Path | None = None) -> dict[str, float]:
    """Each painting's ``Trainer.style_pull`` with the ``--add-style`` defaults, no limit applied, on the training
    photos in ``data`` (default: the protocol's)."""
    from restyle.train.loop import Trainer

    work = Path(tempfile.mkdtemp(prefix="restyle-pull-"))
    try:
        data = data or protocol_training_photos(work)
        out = {}
        for name in names:
            cfg = add_style_config(painting_path(name), base, data, work / name, {"style_pull_max": 0.0}, name)
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
    p.add_argument("--data", type=Path, help="measure on these training photos instead (the limit is not derived)")
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    args, _ = p.parse_known_args(argv)
    found = pulls(TUNING + HELDOUT, args.base, args.data)
    if args.data is not None:
        for name, pull in sorted(found.items(), key=lambda kv: kv[1]):
            print(f"{name:40s} {split_of(name):8s} pull {pull:7.2f}")
        return 0
    weight = float(ADD_STYLE_DEFAULTS["style_weight"])
    limit = limit_from_tuning(found, weight)
    in_use = ADD_STYLE_DEFAULTS.get("style_pull_max", 0)
    rows = [
        [name, KIND[name], split_of(name), f"{pull:.2f}", f"{weight * pull:.1f}", f"{min(weight, limit / pull):.2f}"]
        for name, pull in sorted(found.items(), key=lambda kv: kv[1])
    ]
    caption = (
        f"`python -m bench new_style --protocol --pull`: each painting's style pull, the style loss of the run's "
        f"fixed batch of 8 untouched training photos (128 px crops, the protocol's training photos) against the "
        f"painting, with the `--add-style` defaults. The limit is the default style weight ({weight:g}) times the "
        f"largest pull among the tuning paintings: **{limit:.1f}** (the recipe's `style_pull_max`: {in_use:g}). "
        f"'weight': the style weight `--add-style` trains that painting with, lowered where weight x pull would "
        f"pass the limit. Sorted by pull."
    )
    header = ["painting", "kind", "split", "pull", "weight x pull", "weight"]
    report(SECTION, header, rows, args.write.with_name("quality.md") if args.write else None, note=caption)
    return 0
