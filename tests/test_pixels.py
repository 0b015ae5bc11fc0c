"""The one pixel contract: float<->uint8 rounds and clips, "longest side to N" and resize live in imaging."""

from __future__ import annotations

import numpy as np

from restyle.imaging import fit_max_size, long_side_size, resize, to_float, to_uint8
from restyle.video.stabilize import Stabilizer


def test_to_uint8_rounds_and_clips() -> None:
    values = np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 254.5 / 255, 1.0, 2.0], np.float32)
    assert to_uint8(values).tolist() == [0, 0, 0, 1, 255, 255, 255]


def test_uint8_round_trip_is_exact() -> None:
    levels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(to_float(levels)), levels)


def test_long_side_size_keeps_the_aspect_and_at_least_one_pixel() -> None:
    assert long_side_size(341, 512, 256) == (170, 256)
    assert long_side_size(512, 341, 1024) == (1024, 682)  # enlarges too
    assert long_side_size(1, 1000, 10) == (1, 10)


def test_fit_max_size_never_enlarges() -> None:
    image = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    assert fit_max_size(image, 64) is image
    assert fit_max_size(image, None) is image
    assert fit_max_size(image, 20).shape == (15, 20, 3)


def test_resize_keeps_uint8_and_clips_float_overshoot() -> None:
    rng = np.random.default_rng(1)
    small = to_uint8(rng.random((8, 8, 3)))
    assert resize(small, 32, 32).dtype == np.uint8
    big = resize(to_float(small), 32, 32)  # bicubic overshoots on noise; the result stays in [0, 1]
    assert big.min() >= 0.0 and big.max() <= 1.0
    # Shrinking uint8 agrees with shrinking float to within one level of rounding.
    frame = to_uint8(rng.random((64, 96, 3)))
    diff = resize(frame, 32, 48).astype(int) - to_uint8(resize(to_float(frame), 32, 48))
    assert np.abs(diff).max() <= 1


def test_stabilizer_accepts_float_frames_out_of_range() -> None:
    """Float input frames are clipped and rounded for the histogram, not wrapped around.

    The stabilizer's cut test compares hue/saturation histograms, which every grey frame shares whatever its
    level: the frames here are coloured, so wrapping (red 1.2 -> 306 -> 50, a grey) would read as a cut.
    """
    stab = Stabilizer()
    stylized = np.full((36, 64, 3), 0.5, np.float32)
    over = np.full((36, 64, 3), (1.2, 0.2, 0.2), np.float32)  # red above 1: clipped, the red of `red` below
    red = np.full((36, 64, 3), (1.0, 0.2, 0.2), np.float32)
    stab(over, stylized)
    assert stab(red, stylized).shape == stylized.shape
    assert stab.cuts == 0  # 1.2 clipped to 1.0 is the same picture: no scene cut
    stab(np.full((36, 64, 3), (0.2, 0.2, 1.0), np.float32), stylized)  # a blue picture is another shot...
    assert stab.cuts == 1  # ...so the counter does count cuts between such frames
