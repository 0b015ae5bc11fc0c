"""Video decoding and encoding through FFmpeg's libraries (PyAV).

Decisions, and why:

* **Timestamps pass through.** Each output frame keeps its input frame's
  presentation time (shifted so the output starts at 0), in the input's time
  base. The frame count, the average frame rate and any variable frame rate
  survive exactly, and audio stays in sync without resampling anything.
* **Rotation is applied to the pixels** (the display matrix a phone writes)
  and the output carries none: the network must see the picture upright, and
  every player then shows the output the same way.
* **H.264 High, yuv420p, even dimensions, ``+faststart``** is what every
  browser plays; an odd last row or column is dropped (4:2:0 needs even sizes).
* **Audio is stream-copied** (packets, not samples) when MP4 can hold the
  codec, so it is bit-identical; otherwise (PCM in an AVI, say) it is
  re-encoded to AAC with a warning. The audio is read through a second
  demuxer on the same file, so the video decoder never waits for it.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from restyle.errors import InputNotFound, UserError
from restyle.imaging import long_side_size

log = logging.getLogger(__name__)

# Audio codecs the MP4 muxer accepts as a stream copy (and browsers mostly play).
MP4_AUDIO_COPY = {"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"}
DEFAULT_CRF = 20
DEFAULT_PRESET = "veryfast"  # encoding must not become the bottleneck on a laptop CPU


class BadVideo(UserError):
    """Not a decodable video (corrupt, truncated, no video stream or unsupported codec)."""

    http_status = 415


class FrameTooLarge(UserError):
    """Frames larger than the limit: refused from the header, before any frame is decoded."""

    http_status = 413


MAX_FRAME_PIXELS = 40_000_000  # 8K UHD is 33 MP; anything larger is refused at probe


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input before decoding it."""

    path: Path
    width: int  # displayed size: after rotation
    height: int
    rotation: int  # counter-clockwise degrees applied to the decoded pixels (0, 90, 180, 270)
    rate: Fraction  # average frame rate
    time_base: Fraction
    frames: int  # the container's count, or an estimate from the duration (0 when unknown)
    duration: float  # seconds (0 when unknown)
    codec: str
    audio_codec: str | None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"no such file: {path}")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise BadVideo(f"{path} is not a readable video ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Counter-clockwise display rotation: the first frame's display matrix, else the old 'rotate' tag."""
    try:
        for frame in container.decode(stream):
            return round(frame.rotation / 90) * 90 % 360
    except av.FFmpegError as exc:
        raise BadVideo(f"{container.name} could not be decoded ({_reason(exc)})") from None
    text = stream.metadata.get("rotate")
    if text and text.lstrip("-").isdigit():
        return -int(text) % 360  # the tag is clockwise
    return 0


def probe(path: str | os.PathLike, max_pixels: int = MAX_FRAME_PIXELS) -> VideoInfo:
    """Read the header and the first frame; raises ``BadVideo`` for anything we cannot process.

    Frames over ``max_pixels`` (by the codec's declared size) raise ``FrameTooLarge``.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise BadVideo(f"{path} has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None or not ctx.width or not ctx.height:
            raise BadVideo(f"{path}: unsupported or unknown video codec")
        if ctx.width * ctx.height > max_pixels:
            raise FrameTooLarge(
                f"{path.name} has {ctx.width}x{ctx.height} frames ({ctx.width * ctx.height / 1e6:.1f} MP); "
                f"the limit is {max_pixels / 1e6:.0f} MP"
            )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise BadVideo(f"{path}: the video stream has no frame rate")
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        frames = stream.frames or (round(duration * rate) if duration else 0)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        rotation = _rotation(container, stream)
        w, h = ctx.width, ctx.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(
            path=path,
            width=w,
            height=h,
            rotation=rotation,
            rate=Fraction(rate),
            time_base=Fraction(stream.time_base),
            frames=int(frames),
            duration=duration,
            codec=ctx.name,
            audio_codec=audio,
        )


@dataclass
class Frame:
    """One decoded frame: upright RGB pixels and its time, in seconds from the output's start."""

    index: int
    time: float
    pts: int  # in the input stream's time base, relative to the output's start
    rgb: np.ndarray  # HxWx3 uint8


REORDER_DEPTH = 16  # frames of look-ahead to put mislabelled timestamps back in order


def _timestamps(decoded: Iterator[av.VideoFrame], step: float) -> Iterator[tuple[int, av.VideoFrame]]:
    """(pts, frame) in output order, with the timestamps sorted back into presentation order.

    The decoder emits frames in presentation order, but some containers (AVI
    with B-frames, for one) attach their timestamps in *decode* order, so
    they arrive shuffled: 1, 4, 3, 5, 2, ... The set of values is right, only
    their assignment is not; a small heap re-sorts them. Missing timestamps
    are filled in from the frame rate. Correct streams pass through unchanged.
    """
    heap: list[int] = []
    pending: list[av.VideoFrame] = []
    last = -1
    for i, frame in enumerate(decoded):
        pts = frame.pts if frame.pts is not None else max(last + 1, round(i * step))
        last = max(last, pts)
        heapq.heappush(heap, pts)
        pending.append(frame)
        if len(pending) > REORDER_DEPTH:
            yield heapq.heappop(heap), pending.pop(0)
    while pending:
        yield heapq.heappop(heap), pending.pop(0)


MAX_FPS = 120  # the most frames per second of ``duration`` that read_frames ever decodes


def frame_budget(info: VideoInfo, duration: float) -> int:
    """How many frames ``duration`` seconds may hold: the header's rate (at most MAX_FPS), +25 %, + reorder slack.

    A bound on work that no timestamp can talk up: repeated or bogus
    timestamps keep the decoded time from advancing, so time alone is no cap.
    """
    rate = min(float(info.rate), MAX_FPS) if info.rate else MAX_FPS
    return math.ceil(duration * rate * 1.25) + REORDER_DEPTH


def read_frames(
    info: VideoInfo, start: float = 0.0, duration: float | None = None, size: tuple[int, int] | None = None
) -> Iterator[Frame]:
    """Decode frames in ``[start, start + duration)`` as upright uint8 RGB; corrupt data raises ``BadVideo``.

    Timestamps that still repeat after re-sorting (broken muxers) are nudged
    forward by one tick so the encoder always receives increasing ones. With
    a ``duration``, decoding stops at whichever comes first: that much decoded
    time, or :func:`frame_budget` frames; the container's header is never trusted.
    ``size`` (width, height of the upright output) lets FFmpeg's scaler shrink
    each frame while converting it to RGB, so a 4K frame never exists here as
    a full-resolution array (it used to become 4K float32 before shrinking).
    """
    end = start + duration if duration is not None else math.inf
    budget = frame_budget(info, duration) if duration is not None else math.inf
    k = (info.rotation // 90) % 4
    index = 0
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame/slice threads inside FFmpeg
        tb = stream.time_base
        if start > 0:
            container.seek(int(start / tb), stream=stream, backward=True, any_frame=False)
        first_pts: int | None = None
        last_pts = -1
        try:
            for pts, frame in _timestamps(container.decode(stream), float(1 / (info.rate * tb))):
                t = float(pts * tb)
                if t < start - 1e-6:
                    continue
                if t >= end - 1e-6:
                    break
                if first_pts is None:
                    first_pts = pts
                rel = max(pts - first_pts, last_pts + 1)
                last_pts = rel
                if duration is not None and (float(rel * tb) >= duration - 1e-6 or index >= budget):
                    break
                if size is not None:
                    w, h = size if k % 2 == 0 else size[::-1]  # the decoded frame is not yet rotated
                    if (frame.width, frame.height) != (w, h):
                        frame = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA")
                rgb = frame.to_ndarray(format="rgb24")
                if k:
                    rgb = np.ascontiguousarray(np.rot90(rgb, k))
                yield Frame(index=index, time=float(rel * tb), pts=rel, rgb=rgb)
                index += 1
        except av.FFmpegError as exc:
            raise BadVideo(f"{info.path} could not be decoded at frame {index} ({_reason(exc)})") from None
    if index == 0:
        raise BadVideo(f"{info.path}: no frames to decode" + (f" after {start:g} s" if start else ""))


def even_size(width: int, height: int, max_size: int | None = None) -> tuple[int, int]:
    """The output size: shrunk to ``max_size`` on the long side (never enlarged), both sides even."""
    if max_size is not None and max(width, height) > max_size:
        height, width = long_side_size(height, width, max_size)
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


class VideoWriter:
    """H.264 yuv420p MP4 with the input's time base and (copied) audio.

    Call ``write(rgb_uint8, pts)`` for each frame in order, then ``close()``;
    ``abort()`` releases the file without finishing it (the caller deletes it).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        width: int,
        height: int,
        *,
        start: float = 0.0,
        duration: float | None = None,
        audio: bool = True,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
    ):
        self.path = Path(path)
        self.info = info
        self.start = start
        self.end = start + duration if duration is not None else math.inf
        try:
            self.container = av.open(str(self.path), mode="w", format="mp4", options={"movflags": "+faststart"})
        except av.FFmpegError as exc:
            raise UserError(f"cannot write {self.path}: {_reason(exc)}") from None
        self.stream = self.container.add_stream("libx264", rate=info.rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = info.time_base
        self.stream.codec_context.time_base = info.time_base
        self.stream.options = {"crf": str(crf), "preset": preset, "profile": "high"}
        self.stream.codec_context.color_range = 1  # MPEG (limited) range: what browsers assume
        self._audio: _AudioCopy | None = None
        if audio and info.has_audio:
            self._audio = _AudioCopy(info.path, self.container, start, self.end)

    @property
    def audio_mode(self) -> str:
        """What happened to the audio: 'copied', 're-encoded to AAC' or 'none'."""
        if self._audio is None:
            return "none"
        return "copied" if self._audio.copy else f"{self._audio.in_stream.codec_context.name} re-encoded to AAC"

    def write(self, rgb: np.ndarray, pts: int) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts
        frame.time_base = self.info.time_base
        for packet in self.stream.encode(frame):
            self._mux_video(packet)

    def _mux_video(self, packet: av.Packet) -> None:
        if self._audio is not None and packet.dts is not None:
            # Keep audio a little ahead of video so the muxer interleaves without buffering much.
            self._audio.copy_until(float(packet.dts * packet.time_base) + 1.0)
        self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self._mux_video(packet)
        if self._audio is not None:
            self._audio.copy_until(math.inf)
            self._audio.close()
        self.container.close()

    def abort(self) -> None:
        try:
            if self._audio is not None:
                self._audio.close()
            self.container.close()
        except Exception:  # noqa: BLE001 - the partial file is deleted anyway
            log.debug("ignored error while closing an aborted video", exc_info=True)


class _AudioCopy:
    """The input's first audio stream, trimmed to the output window, copied (or AAC-encoded) into the output."""

    def __init__(self, path: Path, output: av.container.OutputContainer, start: float, end: float):
        self.input = av.open(str(path), mode="r")
        self.in_stream = self.input.streams.audio[0]
        self.start, self.end = start, end
        self.copy = self.in_stream.codec_context.name in MP4_AUDIO_COPY
        if self.copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        else:
            log.warning("audio codec %s cannot go into MP4 unchanged; re-encoding it to AAC", self.in_stream.codec.name)
            self.out_stream = output.add_stream("aac", rate=self.in_stream.codec_context.sample_rate or 48000)
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=self.out_stream.rate)
            self.out_stream.layout = "stereo"
        if start > 0:
            self.input.seek(int(start / self.in_stream.time_base), stream=self.in_stream, backward=True)
        self._packets = self.input.demux(self.in_stream)
        self._done = False
        self._offset: int | None = None  # first copied packet's pts, in the input time base
        self._next_sample = 0

    def copy_until(self, t: float) -> None:
        """Copy (or encode) audio packets up to output time ``t`` seconds."""
        while not self._done:
            try:
                packet = next(self._packets)
            except (StopIteration, av.FFmpegError):
                self._finish()
                return
            if packet.pts is None or packet.size == 0:
                continue
            tb = packet.time_base
            t_in = float(packet.pts * tb)
            if self.start > 0 and t_in < self.start - 1e-6:
                continue  # before the window (without a window, keep even negative priming packets)
            if t_in >= self.end:
                self._finish()
                return
            if self.copy:
                self._copy(packet)
            else:
                self._encode(packet)
            if t_in - self.start >= t:
                return

    def _copy(self, packet: av.Packet) -> None:
        if self.start > 0:
            if self._offset is None:
                self._offset = round(self.start / packet.time_base)
            packet.pts -= self._offset
            if packet.dts is not None:
                packet.dts -= self._offset
        packet.stream = self.out_stream
        self.out_stream.container.mux(packet)

    def _encode(self, packet: av.Packet) -> None:
        for frame in packet.decode():
            for resampled in self._resampler.resample(frame):
                resampled.pts = self._next_sample
                self._next_sample += resampled.samples
                for out in self.out_stream.encode(resampled):
                    self.out_stream.container.mux(out)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if not self.copy:
            for resampled in self._resampler.resample(None):
                resampled.pts = self._next_sample
                self._next_sample += resampled.samples
                for out in self.out_stream.encode(resampled):
                    self.out_stream.container.mux(out)
            for out in self.out_stream.encode(None):
                self.out_stream.container.mux(out)

    def close(self) -> None:
        self.input.close()
