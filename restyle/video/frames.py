"""The per-frame steps every moving-picture front end shares: stylize, then stabilize.

``stylize_video`` (files, the CLI, the job worker, the benchmarks) and
``restyle live`` (the camera) run these two steps as stages of the same
threaded ``Pipeline``, so a frame is stylized and stabilized the same way
whichever way it arrived. Frames come in as uint8 RGB already at the output
size; each is converted to float once, for the network.
"""

from __future__ import annotations

import numpy as np

from restyle.imaging import to_float
from restyle.runtime import StylizeOptions, Stylizer
from restyle.video.shots import ShotNorm
from restyle.video.stabilize import StabilizeConfig, Stabilizer


class FrameStylizer:
    """Stateful, one per stream (and per style: a new style is a new scene); frames in order.

    ``frozen_norm``: instance-norm statistics measured once per shot
    (``restyle.video.shots``) instead of on every frame. ``stabilize``: the
    flow-based blend with the previous output (``restyle.video.stabilize``);
    False passes the stylized frame through.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        options: StylizeOptions,
        *,
        stabilize: bool | StabilizeConfig = True,
        frozen_norm: bool = True,
    ):
        self.stylizer = stylizer
        self.options = options
        self.shots = ShotNorm(stylizer, options) if frozen_norm else None
        self.stabilizer: Stabilizer | None = None
        if stabilize:
            self.stabilizer = Stabilizer(stabilize if isinstance(stabilize, StabilizeConfig) else None)

    def stylize(self, rgb: np.ndarray) -> np.ndarray:
        """The stylized frame (HxWx3 float32) of ``rgb`` (HxWx3 uint8)."""
        image = to_float(rgb)
        model = self.shots.stylizer_for(rgb, image) if self.shots is not None else self.stylizer
        return model.stylize(image, self.options)

    def stabilize(self, rgb: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """``stylized`` blended with the previous output along the flow of ``rgb`` (unchanged without a stabilizer)."""
        return self.stabilizer(rgb, stylized) if self.stabilizer is not None else stylized

    @property
    def cuts(self) -> int:
        """Scene cuts the stabilizer has seen (0 without one)."""
        return self.stabilizer.cuts if self.stabilizer is not None else 0
