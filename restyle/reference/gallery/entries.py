"""The gallery's table of contents: which figures exist, in page order, as plain data.

Each entry names its file and ``--only`` key, its section title, and the
renderer that draws it (``renderers.render_*``); the budget a renderer uses
comes from the run, not from the table, so the table is the same for every
profile and can be checked without rendering anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from restyle.errors import UserError
from restyle.reference.gallery import renderers as r
from restyle.reference.gallery.record import Caption

Renderer = Callable[[r.GalleryRun, Path], Caption]


@dataclass(frozen=True)
class GalleryEntry:
    """One figure of the gallery: ``OUT/reference/KEY.png`` under the section ``title``, drawn by ``render``."""

    key: str
    title: str
    render: Renderer


ENTRIES: tuple[GalleryEntry, ...] = (
    GalleryEntry("gatys", "Gatys style transfer", r.render_gatys),
    GalleryEntry("texture", "Texture synthesis", r.render_texture),
    GalleryEntry("inversion", "Feature inversion", r.render_inversion),
    GalleryEntry("class-visualization", "Class visualization", r.render_class_visualization),
    GalleryEntry("fooling", "Fooling images", r.render_fooling),
    GalleryEntry("deepdream", "DeepDream", r.render_deepdream),
    GalleryEntry("filters", "First-layer filters", r.render_filters),
    GalleryEntry("activations", "Feature maps", r.render_activations),
    GalleryEntry("patches", "Maximally activating patches", r.render_patches),
    GalleryEntry("occlusion", "Occlusion sensitivity", r.render_occlusion),
    GalleryEntry("saliency", "Saliency", r.render_saliency),
    GalleryEntry("guided-backprop", "Guided backprop", r.render_guided_backprop),
    GalleryEntry("integrated-gradients", "Integrated gradients", r.render_integrated_gradients),
    GalleryEntry("adversarial", "Targeted adversarial example", r.render_adversarial),
    GalleryEntry("embedding", "Embedding: neighbours and t-SNE", r.render_embedding),
)

KEYS: tuple[str, ...] = tuple(e.key for e in ENTRIES)


def select(only: Iterable[str] | None = None) -> list[GalleryEntry]:
    """The entries to render, in page order: all, or those whose key is in ``only`` (unknown keys are an error)."""
    if only is None:
        return list(ENTRIES)
    wanted = set(only)
    unknown = wanted - set(KEYS)
    if unknown:
        raise UserError(f"unknown figure(s): {', '.join(sorted(unknown))}; choose from {', '.join(KEYS)}")
    return [e for e in ENTRIES if e.key in wanted]
