"""Per-shot frozen instance-norm statistics for video: measured on a shot's first frame, reused until a cut.

Instance norm re-measures every channel's mean and spread on every frame, so
a moving object or a flash shifts the whole frame's colours: part of a
stylized video's flicker. Within one shot the statistics barely change, so
``ShotNorm`` measures them once (on the shot's first frame, as the network
sees it), folds them into the network (``Stylizer.frozen``) and runs every
following frame of the shot on that graph, which is also about 10 % faster.
A new shot (the same histogram test as the stabilizer's scene cuts) or
``refresh_every`` frames (slow pans drift) measures again.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from restyle.runtime import StylizeOptions, Stylizer
from restyle.video.stabilize import StabilizeConfig, frame_histogram

log = logging.getLogger(__name__)


class ShotNorm:
    """Stateful, one per video: ``stylizer_for(frame_rgb)`` returns the stylizer for that frame, in order."""

    def __init__(
        self,
        stylizer: Stylizer,
        options: StylizeOptions,
        cut_hist: float = StabilizeConfig.cut_hist,
        refresh_every: int = 150,
    ):
        self.stylizer = stylizer
        self.options = options
        self.cut_hist = cut_hist
        self.refresh_every = refresh_every
        self._frozen: Stylizer | None = None
        self._hist: np.ndarray | None = None
        self._age = 0
        self.shots = 0  # statistics measured so far (for logs and tests)
        self.failed = False  # freezing failed once (e.g. no room for its scratch file): the full graph from then on

    def stylizer_for(self, frame_rgb: np.ndarray, frame_float: np.ndarray) -> Stylizer:
        """The frozen stylizer of ``frame_rgb``'s shot (uint8 for the cut test; ``frame_float`` to measure on)."""
        hist = frame_histogram(frame_rgb)
        cut = self._hist is not None and float(cv2.compareHist(self._hist, hist, cv2.HISTCMP_CORREL)) < self.cut_hist
        if self.failed:
            return self.stylizer
        if self._frozen is None or cut or self._age >= self.refresh_every:
            try:
                self._frozen = self.stylizer.frozen(frame_float, self.options)
            except Exception as exc:  # noqa: BLE001 - an optimisation: any failure falls back to the full graph
                log.warning("per-shot statistics unavailable (%s); measuring them on every frame", exc)
                self.failed = True
                return self.stylizer
            self._age = 0
            self.shots += 1
        self._hist = hist
        self._age += 1
        return self._frozen
