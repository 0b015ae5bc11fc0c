"""The stabilizer lowers the warping error on a moving scene, keeps fresh frames at cuts and occlusions."""

from __future__ import annotations

import numpy as np

from restyle.video.flow import FlowEstimator, consistency_mask, to_gray, warp
from restyle.video.metrics import TemporalReference, warping_error
from restyle.video.stabilize import Stabilizer
from tests.video.clips import moving_scene


def test_flow_recovers_a_shift_and_warp_undoes_it() -> None:
    frames = moving_scene(2, 96, 72, speed=2.0)
    a, b = to_gray(frames[1]), to_gray(frames[0])
    flow = FlowEstimator()(a, b)  # the view pans by (+2, +2): pixel p of frame 1 was at p + (2, 2) in frame 0
    centre = flow[20:-20, 20:-20]
    assert np.allclose(np.median(centre.reshape(-1, 2), axis=0), (2, 2), atol=0.3)
    warped = warp(frames[0].astype(np.float32), flow)
    assert np.abs(warped[20:-20, 20:-20] - frames[1][20:-20, 20:-20]).mean() < 6
    mask = consistency_mask(flow, FlowEstimator()(b, a))
    assert mask[20:-20, 20:-20].mean() > 0.9


def test_stabilizer_lowers_warping_error_on_moving_scene(stylizer) -> None:
    frames = moving_scene(10, 64, 48, speed=1.0, seed=3)
    rng = np.random.default_rng(0)
    per_frame = []
    for f in frames:  # the real network, plus the small input noise that makes per-frame models flicker
        noisy = np.clip(f / 255.0 + rng.normal(0, 0.03, f.shape), 0, 1).astype(np.float32)
        per_frame.append(stylizer.stylize(noisy))
    stab = Stabilizer()
    stabilized = [stab(f, s) for f, s in zip(frames, per_frame)]
    ref = TemporalReference.from_frames(frames)
    before, after = warping_error(per_frame, ref), warping_error(stabilized, ref)
    assert after < 0.5 * before, (before, after)
    assert stab.cuts == 0


def test_scene_cut_resets_to_the_fresh_frame() -> None:
    a = moving_scene(3, 64, 48, seed=1)
    b = [255 - f for f in moving_scene(3, 64, 48, seed=2)]
    stab = Stabilizer()
    outs = []
    for f in a + b:
        styl = f.astype(np.float32) / 255
        outs.append(stab(f, styl))
    assert stab.cuts == 1
    assert np.array_equal(outs[3], b[0].astype(np.float32) / 255)  # nothing of the old shot is blended in
    assert not np.array_equal(outs[2], a[2].astype(np.float32) / 255)  # within a shot it does blend
