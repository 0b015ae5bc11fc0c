"""The gallery's record and page: ``OUT/reference/gallery.json`` and the ``OUT/reference.md`` written from it.

The JSON record is the source of truth: each figure's caption, profile, time
and machine, written by the run that drew it. The Markdown page is a pure
function of the record, so a ``--only`` run rewrites the page with the other
figures' captions unchanged, and the page can be rebuilt without rendering
(``write_page``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from restyle.atomic import atomic_path
from restyle.reference.gallery import prose


@dataclass
class Caption:
    """What a figure's caption states besides its time (which the gallery measures)."""

    method: str
    paper: str
    network: str
    budget: str
    command: str
    note: str = ""


def record_path(out_dir: Path) -> Path:
    return out_dir / "reference" / "gallery.json"


def load_record(out_dir: Path) -> dict[str, dict]:
    """The figures recorded so far under ``out_dir`` ({key: entry}; empty before the first run)."""
    path = record_path(out_dir)
    return json.loads(path.read_text()).get("figures", {}) if path.is_file() else {}


def record_figure(out_dir: Path, key: str, title: str, caption: Caption, run: dict, order: Sequence[str]) -> None:
    """Add or replace one figure's entry, keeping the others (several ``--only`` runs may share one folder).

    ``run`` holds what the run measured (profile, times, threads, machine);
    entries are kept in ``order`` so the file diffs cleanly between runs.
    """
    entries = load_record(out_dir)  # re-read: another run may have recorded a figure meanwhile
    entries[key] = {"title": title, **run, **asdict(caption)}
    record = {"figures": {k: entries[k] for k in order if k in entries}}
    with atomic_path(record_path(out_dir)) as tmp:
        tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")


def markdown(figures: dict[str, dict], order: Sequence[str]) -> str:
    """The gallery page: the header, one captioned section per recorded figure in ``order``, the closing prose."""
    profiles = sorted({e["profile"] for e in figures.values()})
    total = sum(e["wall_seconds"] for e in figures.values())
    parts = [prose.HEADER.format(profiles=", ".join(profiles) or "none", total=total / 60)]
    if profiles != ["publication"]:
        parts.append(prose.NOT_PUBLISHED)
    for key in order:
        e = figures.get(key)
        if e is None:
            continue
        parts.append(
            f"## {e['title']}\n\n![{e['title']}](reference/{key}.png)\n\n"
            f"**Method:** {e['method']}. **Paper:** {e['paper']}. **Network and layer:** {e['network']}. "
            f"**Budget** ({e['profile']} profile): {e['budget']}. "
            f"**Time:** {e['wall_seconds']:.0f} s ({e['cpu_seconds']:.0f} s CPU; {e['machine']}).\n\n"
            + (f"{e['note']}\n\n" if e.get("note") else "")
            + f"{e['command']}\n"
        )
    parts.append(prose.PYTHON_API)
    parts.append(prose.DGN_AM)
    return "\n".join(parts)


def write_page(out_dir: Path, order: Sequence[str]) -> Path:
    """Rewrite ``out_dir/reference.md`` from the record (no figure is rendered)."""
    page = out_dir / "reference.md"
    with atomic_path(page) as tmp:
        tmp.write_text(markdown(load_record(out_dir), order))
    return page
