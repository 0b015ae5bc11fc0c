"""Every recipe the new-style protocol has tried, side by side: how the ``--add-style`` defaults were chosen.

    python -m bench new_style --protocol --recipes [--out out/new-style-protocol] [--write docs/benchmarks.md]

``bench new_style --protocol`` keeps one folder per recipe (``--set`` values
on top of the defaults, hashed with the base file) and one result per painting
and set of minute marks. This reads them all back, trains nothing, and prints
one row per recipe, split and mark: how many paintings beat the peer (mean
style and palette distance at most the peer's, content at most 1.1x; the
protocol's rule), the mean over paintings of each distance over the peer's,
and, for paintings the base saw, how many are within 10 % of the full run.
Recipes are chosen on the ``tuning`` rows and reported on the ``heldout``
rows; a row covers only the paintings that recipe ran on, named in its
``paintings`` column when not the whole split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.common import report
from bench.new_style_protocol import BUNDLED, HELDOUT, TUNING, rows_for

SECTION = "Your own style from any painting: recipes tried"


def load_records(out: Path) -> list[tuple[dict, list[dict]]]:
    """(recipe, its painting results) for every recipe folder under ``out``, oldest folder first."""
    found = []
    for recipe_file in sorted(out.glob("*/recipe.json"), key=lambda p: p.stat().st_mtime):
        records = [json.loads(p.read_text()) for p in sorted(recipe_file.parent.glob("*min__*photos.json"))]
        if records:
            # the folder names the recipe (an id in its recipe.json may predate a change to the hashing)
            found.append(({**json.loads(recipe_file.read_text()), "id": recipe_file.parent.name}, records))
    return found


def describe(recipe: dict, defaults: dict) -> str:
    """The recipe as its differences from today's ``--add-style`` defaults ("defaults" when none)."""
    training = recipe["training"]
    diff = {k: v for k, v in training.items() if defaults.get(k) != v and not (_num(defaults.get(k), v))}
    parts = [f"{k}={v}" for k, v in sorted(diff.items())] + [f"no {k}" for k in sorted(set(defaults) - set(training))]
    return ", ".join(parts) or "defaults"


def _num(a, b) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float) and float(a) == float(b)


def short(painting: str) -> str:
    """A bundled style's name, or a new painting's first two words (the two Hokusai prints differ there)."""
    return painting if painting in BUNDLED else "_".join(painting.split("_")[:2])


def summary_rows(recipe: dict, records: list[dict], defaults: dict) -> list[list[str]]:
    """One row per (split, marks set, minute) of one recipe."""
    rows = []
    groups: dict[tuple[str, tuple], list[dict]] = {}
    for r in records:
        groups.setdefault((r["split"], tuple(r["minutes"])), []).append(r)
    for (split, minutes), group in sorted(groups.items(), key=lambda kv: (kv[0][0] != "tuning", kv[0][1])):
        everyone = TUNING if split == "tuning" else HELDOUT
        names = [r["painting"] for r in group]
        which = "all" if set(names) == set(everyone) else ", ".join(short(n) for n in names)
        for minute in minutes:
            beats, within, ratios, steps = [], [], [], []
            for r in group:
                _, verdicts = rows_for(r)
                v = verdicts.get(minute, {})
                if "beats" in v:
                    beats.append(v["beats"])
                if "within" in v:
                    within.append(v["within"])
                mark = next(m for m in r["marks"] if m["minute"] == minute)
                steps.append(mark["step"])
                if r["peer"]:
                    ratios.append(np.mean(mark["scores"], axis=0) / np.mean(r["peer"], axis=0))
            ratio = np.mean(ratios, axis=0) if ratios else None
            rows.append(
                [
                    recipe["id"],
                    describe(recipe, defaults),
                    split,
                    f"{len(group)} ({which})",
                    f"{minute:g} ({min(steps)}-{max(steps)})"
                    if min(steps) != max(steps)
                    else f"{minute:g} ({steps[0]})",
                    f"{sum(beats)} of {len(beats)}" if beats else "-",
                    *([f"{ratio[i]:.3f}" for i in (0, 2, 1)] if ratio is not None else ["-"] * 3),
                    f"{sum(within)} of {len(within)}" if within else "-",
                ]
            )
    return rows


def main(argv: list[str]) -> int:
    from restyle.recipes import ADD_STYLE_DEFAULTS

    p = argparse.ArgumentParser(
        prog="python -m bench new_style --protocol --recipes", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, default=Path("out/new-style-protocol"))
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    args, _ = p.parse_known_args(argv)
    found = load_records(args.out)
    if not found:
        raise SystemExit(f"no protocol results under {args.out}: run python -m bench new_style --protocol first")
    header = [
        "recipe", "differs from the defaults", "split", "paintings", "minute (steps)", "beat the peer",
        "style / peer", "palette / peer", "content / peer", "within 10% of full run",
    ]  # fmt: skip
    rows = [row for recipe, records in found for row in summary_rows(recipe, records, ADD_STYLE_DEFAULTS)]
    note = (
        "`python -m bench new_style --protocol --recipes`: every recipe `python -m bench new_style --protocol` has "
        f"results for in `{args.out}`, read back (nothing trained). A recipe is today's `--add-style` defaults "
        "(`restyle/recipes.py`) with the values in the second column; 'minute (steps)': the training-clock mark and "
        "the steps reached by then; the three ratios are the mean over the row's paintings of the mean distance over "
        "the peer's (below 1: better than the peer; content may reach 1.1); 'beat the peer': the protocol's rule per "
        "painting. Recipes are chosen on the tuning rows and only reported on the held-out rows."
    )
    report(SECTION, header, rows, args.write.with_name("quality.md") if args.write else None, note=note)
    return 0
