"""Per-shot frozen statistics: measured once per shot, again after a cut, same first frame as the full network."""

from __future__ import annotations

import numpy as np

from restyle.imaging import to_float
from restyle.runtime import StylizeOptions
from restyle.video.shots import ShotNorm
from tests.video.clips import moving_scene


def test_statistics_are_measured_once_per_shot_and_again_after_a_cut(stylizer) -> None:
    options = StylizeOptions()
    shots = ShotNorm(stylizer, options)
    first = moving_scene(4, 64, 48, seed=0)
    second = [255 - frame[:, :, ::-1] for frame in moving_scene(3, 64, 48, seed=5)]  # other colours: a cut
    models = [shots.stylizer_for(f, to_float(f)) for f in first]
    assert shots.shots == 1 and all(m is models[0] for m in models)
    after = [shots.stylizer_for(f, to_float(f)) for f in second]
    assert shots.shots == 2 and after[0] is not models[0]
    # the shot's first frame is stylized exactly as without frozen statistics
    frame = to_float(first[0])
    np.testing.assert_allclose(models[0].stylize(frame, options), stylizer.stylize(frame, options), atol=2e-5)


def test_long_shots_measure_again_after_refresh_every_frames(stylizer) -> None:
    shots = ShotNorm(stylizer, StylizeOptions(), refresh_every=3)
    for f in moving_scene(7, 64, 48, seed=1):
        shots.stylizer_for(f, to_float(f))
    assert shots.shots == 3  # frames 0, 3 and 6


def test_a_failure_to_freeze_falls_back_to_the_full_network(stylizer, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(type(stylizer), "frozen", broken)
    shots = ShotNorm(stylizer, StylizeOptions())
    frames = moving_scene(3, 64, 48, seed=2)
    assert all(shots.stylizer_for(f, to_float(f)) is stylizer for f in frames)
    assert shots.failed and shots.shots == 0
