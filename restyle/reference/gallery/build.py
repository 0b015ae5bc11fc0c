"""Render gallery entries, time each one, record its caption and rewrite the page.

Each figure is rendered with the global torch seed reset (so a ``--only``
run draws what a full run draws), timed in wall and CPU seconds, shrunk to a
palette PNG, and recorded at once, so an interrupted run keeps what it drew.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from restyle.reference import budget as bd
from restyle.reference.gallery.entries import KEYS, select
from restyle.reference.gallery.record import record_figure, write_page
from restyle.reference.gallery.renderers import GalleryRun


def build(out_dir: Path, budget: bd.GalleryBudget, only: Iterable[str] | None = None) -> Path:
    """Render the figures (all, or ``only`` these keys) into ``out_dir/reference/``; rewrite ``reference.md``.

    Returns the page's path. Figures not rendered keep their recorded entries.
    """
    entries = select(only)  # unknown keys fail before any work
    fig_dir = out_dir / "reference"
    fig_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = GalleryRun(budget, Path(tmp))
        for entry in entries:
            png = fig_dir / f"{entry.key}.png"
            torch.manual_seed(0)
            t0, c0 = time.perf_counter(), _cpu_seconds()
            caption = entry.render(run, png)
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            print(f"{entry.key}: {wall:.0f} s wall, {cpu:.0f} s CPU", file=sys.stderr, flush=True)
            shrink_png(png)
            measured = {
                "profile": budget.name,
                "wall_seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "threads": torch.get_num_threads(),
                "machine": _machine(),
            }
            record_figure(out_dir, entry.key, entry.title, caption, measured, KEYS)
    return write_page(out_dir, KEYS)


def shrink_png(path: Path, colours: int = 256) -> None:
    """Palette-quantize a figure so the committed gallery stays small (dithered: smooth images would band)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    small.save(path, optimize=True)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} torch thread(s)"
