"""The style pull's reference photos: the same crops for every user, whatever their training folder holds.

``Trainer.style_pull`` measures how hard a painting's style term pulls at
the start of a run: the (relative Gram) style loss of untouched photos
against the painting. ``--add-style`` lowers the style weight of a painting
that pulls harder than any tuning painting of the new-style protocol did
(``TrainConfig.style_pull_max``). Measured on the run's own training photos,
the same painting got a different weight from each folder: the hare pulled
about 1.3x as hard on the two photos the server ships as on the protocol's
training photos, so a style made through the API trained at another weight
than the protocol chose. Measured on these fixed crops of the two bundled
Kodak photos, a painting's weight depends on the painting alone.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from restyle.train.data import PhotoFolder

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# Kodak kodim23 (parrots: saturated colour, smooth ground) and kodim08 (houses: fine edges, greys)
REFERENCE_PHOTOS = (ASSETS / "sample.jpg", ASSETS / "kodim08.jpg")
REFERENCE_CROPS = 8
REFERENCE_SEED = 20261207


def reference_batch(image_size: int, crops: int = REFERENCE_CROPS) -> Tensor:
    """``crops`` training-style crops (random resized crop and flip, ``PhotoFolder.crop``) of the reference photos
    at ``image_size``, alternating between the photos: the same tensor on every machine and every run."""
    photos = PhotoFolder(list(REFERENCE_PHOTOS), image_size, cache=True)
    return torch.stack([photos[(j % len(photos), REFERENCE_SEED + j)][0] for j in range(crops)])
