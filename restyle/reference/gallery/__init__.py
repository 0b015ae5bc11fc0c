"""The reference gallery: every figure of ``docs/reference.md``, rebuilt by ``python -m restyle.reference.gallery``.

* ``entries``: the table of figures (key, title, renderer), as plain data;
* ``renderers``: one ``render_KEY(run, out) -> Caption`` per figure: runs the
  method at the run's budget profile (:mod:`restyle.reference.budget`),
  writes the PNG, returns the caption;
* ``record``: the JSON record of every caption and time
  (``OUT/reference/gallery.json``) and the page written from it;
  ``prose``: the page's fixed text;
* ``build``: renders the chosen entries and records them; ``__main__``: the command line.
"""

from __future__ import annotations

from restyle.reference.gallery.build import build
from restyle.reference.gallery.entries import ENTRIES, KEYS, GalleryEntry, select
from restyle.reference.gallery.record import Caption

__all__ = ["ENTRIES", "KEYS", "Caption", "GalleryEntry", "build", "select"]
