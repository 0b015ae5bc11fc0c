"""Stylize a whole video file: the one entry point shared by the CLI, the job worker and the benchmarks.

Frames go through ``FrameStylizer`` (``restyle.video.frames``, shared with
``restyle live``), which calls ``Stylizer.stylize`` with the caller's
``StylizeOptions`` exactly like photos (one pre/post-processing implementation). The output
size is fixed here, before the first frame, because the encoder needs one
even size: FFmpeg's scaler shrinks each frame to it while decoding
(``read_frames(size=...)``), and ``imaging.resize`` only catches a frame that
still differs. Each frame is converted uint8 -> float once, for the network.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restyle.atomic import atomic_path
from restyle.errors import UserError
from restyle.imaging import resize, to_uint8
from restyle.runtime import StylizeOptions, Stylizer
from restyle.video.frames import FrameStylizer
from restyle.video.io import Frame, VideoInfo, VideoWriter, even_size, probe, read_frames
from restyle.video.pipeline import Pipeline, format_breakdown
from restyle.video.stabilize import StabilizeConfig

ProgressFn = Callable[[int, int], None]  # (frames done, frames expected; 0 = unknown)


@dataclass(frozen=True)
class VideoResult:
    path: Path
    frames: int
    seconds: float
    width: int
    height: int
    scene_cuts: int
    audio: str  # 'copied', '<codec> re-encoded to AAC' or 'none'
    stage_seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # busy time per pipeline stage

    def breakdown(self) -> str:
        """Per-stage busy time (``restyle video --verbose``)."""
        return format_breakdown(self.stage_seconds, self.frames, self.seconds)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def expected_frames(info: VideoInfo, start: float, duration: float | None) -> int:
    """Frames the output will have, as far as the header tells (for progress and ETA only)."""
    total = info.frames
    if total <= 0:
        return 0
    available = max(0, total - round(start * info.rate))
    if duration is not None:
        available = min(available, max(1, round(duration * info.rate)))
    return available


def _check_window(info: VideoInfo, start: float, duration: float | None) -> None:
    if start < 0:
        raise UserError(f"--start must not be negative, not {start:g}")
    if duration is not None and duration <= 0:
        raise UserError(f"--duration must be positive, not {duration:g}")
    if info.duration and start >= info.duration:
        raise UserError(f"--start {start:g} s is beyond the end of the video ({info.duration:.2f} s)")


def stylize_video(
    source: str | os.PathLike,
    target: str | os.PathLike,
    stylizer: Stylizer,
    options: StylizeOptions | None = None,
    *,
    stabilize: bool | StabilizeConfig = True,
    start: float = 0.0,
    duration: float | None = None,
    audio: bool = True,
    frozen_norm: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    info: VideoInfo | None = None,
) -> VideoResult:
    """Decode ``source``, stylize every frame, optionally stabilize, encode H.264 MP4 to ``target``.

    ``options.max_size`` sets the output size (applied here so it is fixed
    and even); the target only appears, complete, when everything succeeded.
    ``frozen_norm``: measure instance-norm statistics once per shot
    (``restyle.video.shots``) instead of on every frame.
    """
    options = options or StylizeOptions()
    info = info or probe(source)
    _check_window(info, start, duration)
    width, height = even_size(info.width, info.height, options.max_size)
    frame_options = dataclasses.replace(options, max_size=None)
    total = expected_frames(info, start, duration)
    steps = FrameStylizer(stylizer, frame_options, stabilize=stabilize, frozen_norm=frozen_norm)

    def frames() -> Iterator[Frame]:
        for frame in read_frames(info, start, duration, size=(width, height)):
            if frame.rgb.shape[:2] != (height, width):
                frame.rgb = resize(frame.rgb, height, width)  # still uint8: converted to float once, below
            yield frame

    def stylize(frame: Frame) -> tuple[Frame, np.ndarray]:
        return frame, steps.stylize(frame.rgb)

    def stabilize(item: tuple[Frame, np.ndarray]) -> tuple[Frame, np.ndarray]:
        frame, image = item
        return frame, steps.stabilize(frame.rgb, image)

    stages: list[Callable] = [stylize] + ([stabilize] if steps.stabilizer is not None else [])
    done = 0
    began = time.perf_counter()
    with atomic_path(target) as tmp:
        writer = VideoWriter(tmp, info, width, height, start=start, duration=duration, audio=audio)

        def encode(item: tuple[Frame, np.ndarray]) -> None:
            nonlocal done
            frame, image = item
            if image.shape[:2] != (height, width):
                raise UserError(f"the model returned {image.shape[1]}x{image.shape[0]}, expected {width}x{height}")
            writer.write(to_uint8(image), frame.pts)
            done += 1
            if progress is not None:
                progress(done, max(total, done))

        pipeline = Pipeline(frames(), stages, encode, cancel=cancel)
        try:
            pipeline.run()
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return VideoResult(
        path=Path(target),
        frames=done,
        seconds=time.perf_counter() - began,
        width=width,
        height=height,
        scene_cuts=steps.cuts,
        audio=writer.audio_mode,
        stage_seconds=dict(pipeline.busy),
    )
