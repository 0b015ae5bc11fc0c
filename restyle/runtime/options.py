"""What a caller can ask of one stylization, validated once for every front end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from restyle.contract import StyleWeights
from restyle.errors import UserError

# style_scale="auto": the network sees at most this many pixels on the long
# side, so strokes keep the same size relative to the photo at any resolution.
AUTO_STYLE_SIDE = 1024


@dataclass(frozen=True)
class StylizeOptions:
    """Options of ``Stylizer.stylize``.

    * ``strength``: 0 returns the photo unchanged, 1 the full stylization.
    * ``preserve_color``: keep the photo's chroma, take only the stylized luminance.
    * ``max_size``: shrink so the longest side is at most this (output size too).
    * ``style_scale``: stroke size multiplier; the network runs on the photo
      shrunk by this factor and the result is upsampled guided by the photo.
      ``"auto"`` shrinks to ``AUTO_STYLE_SIDE`` on the long side (never enlarges).
    * ``style_weights``: for multi-style models a style index, a style name, a
      weight per style, or ``{name: weight}``; weights are normalised to sum 1.
    * ``tile``: ``None``/``"auto"`` tiles only photos whose network input exceeds
      ``AUTO_TILE_PIXELS``; an int forces tiles of that many network pixels; 0 never tiles.
    """

    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None
    style_scale: float | Literal["auto"] = 1.0
    style_weights: StyleWeights = None
    tile: int | Literal["auto"] | None = "auto"

    def __post_init__(self) -> None:
        if not (isinstance(self.strength, (int, float)) and 0.0 <= self.strength <= 1.0):
            raise UserError(f"strength must be between 0 and 1, not {self.strength!r}")
        if self.max_size is not None and not (isinstance(self.max_size, int) and self.max_size >= 16):
            raise UserError(f"max_size must be an integer of at least 16, not {self.max_size!r}")
        if self.style_scale != "auto" and not (
            isinstance(self.style_scale, (int, float)) and 0.25 <= self.style_scale <= 16
        ):
            raise UserError(f"style_scale must be 'auto' or between 0.25 and 16, not {self.style_scale!r}")
        if self.tile not in (None, "auto") and not (isinstance(self.tile, int) and (self.tile == 0 or self.tile >= 64)):
            raise UserError(f"tile must be 'auto', 0 (never) or at least 64 pixels, not {self.tile!r}")

    def scale_for(self, height: int, width: int) -> float:
        """The factor by which the network input is shrunk for a photo of this size."""
        if self.style_scale == "auto":
            return max(1.0, max(height, width) / AUTO_STYLE_SIDE)
        return float(self.style_scale)
