"""``Stylizer``: one ONNX Runtime session per model, shared by every front end.

``run`` is the raw network (pads to the stride and crops back); ``stylize``
is the whole photo pipeline: ``max_size`` -> style scale -> network (whole
or tiled) -> guided upsampling -> ``preserve_color`` -> ``strength``;
``stylize_many`` is the same pipeline for several photos, sharing network
calls (the API's micro-batching calls it, so batching lives here, once).

Thread safety: ``InferenceSession.run`` is safe to call concurrently, the
tiling sessions are created once under a lock, and no per-call state lives on
the object, so one Stylizer serves all API workers and video threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from restyle.contract import INPUT_IMAGE, INPUT_STYLE, OUTPUT_IMAGE, StyleWeights, style_vector
from restyle.errors import UserError
from restyle.imaging import fit_max_size, resize
from restyle.runtime import processing, tiling
from restyle.runtime.guided import guided_upsample
from restyle.runtime.model_info import ModelInfo, read_model_info
from restyle.runtime.options import StylizeOptions
from restyle.runtime.providers import provider_list, verify

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

# Network inputs above this many pixels are tiled when tile="auto". At 4 MP the
# fast network peaks around 1.5 GB on the CPU; tiles of 1 MP keep it near 0.5 GB.
AUTO_TILE_PIXELS = 2048 * 2048
THUMBNAIL_SIDE = 1024  # long side of the thumbnail whose instance-norm statistics tiles share
BAND_ROWS = 512  # post-processing works in row bands to bound temporaries on huge photos
SUBPIXEL_TAG = b"\0restyle.subpixel.v1"  # in the optimised-graph cache key of rewritten graphs


class Stylizer:
    """A loaded style model. Construct through ``Registry.get`` to share sessions."""

    def __init__(
        self,
        path: str | os.PathLike,
        provider: str = "auto",
        threads: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        info: ModelInfo | None = None,
    ):
        """``info``: the model's description when the caller already has it (``Registry`` passes its cached
        one, with the registered name and source); otherwise it is read from the file."""
        self.path = Path(path)
        self.info: ModelInfo = info if info is not None else read_model_info(self.path)
        meta = self.info.metadata
        self.stride: int = meta.stride
        self.style_names: list[str] = list(meta.style_names)
        self.min_side = 4 * self.stride
        if threads is not None and threads < 1:
            raise UserError(f"threads must be at least 1, not {threads}")
        self.threads = threads
        self.requested_provider = provider
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._chain = provider_list(provider, meta.precision, meta.num_styles, self.cache_dir)
        self._lock = threading.Lock()
        self._tiling: tuple[ort.InferenceSession, ort.InferenceSession, list[str]] | None = None
        self._canonical: onnx.ModelProto | None = None  # see _canonical_model
        self._no_scratch = False  # the canonical graph could not be built (no scratch space): run graphs as exported
        self._feed: dict[str, np.ndarray] | None = None  # extra inputs of every network call (a frozen fallback)
        self._session = self._load_optimized()

    # -- sessions ---------------------------------------------------------
    def _create_session(
        self, model: bytes | str, optimize: bool = True, save_to: Path | None = None
    ) -> ort.InferenceSession:
        so = ort.SessionOptions()
        so.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        if save_to is not None:
            so.optimized_model_filepath = str(save_to)
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if self.threads:
            so.intra_op_num_threads = self.threads
        so.log_severity_level = 3  # ORT's own warnings are not actionable for users
        try:
            session = ort.InferenceSession(model, so, providers=self._chain)
        except Exception as exc:  # noqa: BLE001 - ORT raises bare RuntimeError/Fail subclasses
            raise UserError(f"cannot load {self.path} with {self._chain[0][0]}: {exc}") from None
        if self.requested_provider == "auto" and self._chain[0][0] not in session.get_providers():
            log.warning("CUDA did not start; running %s on the CPU", self.path.name)
            self._chain = provider_list("cpu")
            if save_to is not None:  # written for the provider that did not start: empty, so it is never published
                with contextlib.suppress(OSError):
                    save_to.write_bytes(b"")
            return self._create_session(model)
        verify(session, self._chain)
        return session

    def _load_optimized(self) -> ort.InferenceSession:
        """The main session, from ONNX Runtime's optimised graph cached on disk when there is one.

        Level ALL rewrites the graph for this machine (NCHWc layouts, fused
        Conv+activation), which costs time at every start; ORT can save the
        result and load it with no further optimisation. The cache key holds
        everything that makes the saved graph valid: the model's bytes, the
        ORT version, the provider and this CPU's model name. The file lives in
        the cache folder rather than beside the model, because bundled models
        sit in a read-only install. Any failure just optimises again.

        Nothing here needs disk space: with no scratch space for the rewrite
        (``specialize.canonical``) the exported graph runs as it is, and a
        cache file that cannot be written completely is never published
        (``optimized_cache.publish``), so no reader sees a partial one.
        """
        from restyle.runtime import optimized_cache

        model = self.path.read_bytes()
        rewrite = self._rewrites_graphs()
        # the key names the rewrite too, so a cache written before it (or by a GPU session) is never taken for it
        key = model + (SUBPIXEL_TAG if rewrite else b"")
        cached = optimized_cache.cached_model_path(key, self._chain[0][0], self.cache_dir)
        if cached is not None and cached.is_file():
            try:
                return self._create_session(str(cached), optimize=False)
            except UserError:
                optimized_cache.discard(cached)  # stale or damaged: rebuild it below
        graph = model
        if rewrite:
            canonical_graph = self._canonical_model()
            if canonical_graph is None:  # no scratch space: the exported graph, never cached as the rewritten one
                return self._create_session(model)
            graph = self._rewritten(_copy(canonical_graph)).SerializeToString()
        scratch = optimized_cache.scratch_file(cached) if cached is not None else None
        if cached is None or scratch is None:
            return self._create_session(graph)
        try:
            session = self._create_session(graph, save_to=scratch)
        except UserError:  # ORT could not write the cache file (disk full, quota, file-size limit): run without it
            optimized_cache.discard(scratch)
            return self._create_session(graph)
        optimized_cache.publish(scratch, cached)  # a cache that cannot be written only costs the next start
        return session

    def _rewrites_graphs(self) -> bool:
        """Whether this stylizer runs its graphs with the resize-convolutions as sub-pixel convolutions.

        On ONNX Runtime's CPU provider and fp32 models only: that is where the
        rewrite was measured (``python -m bench graph_variants``); GPU kernels
        and reduced-precision graphs keep the exported form.
        """
        return self._chain[0][0] == "CPUExecutionProvider" and self.info.metadata.precision == "fp32"

    def _rewritten(self, canonical_graph: onnx.ModelProto) -> onnx.ModelProto:
        """``canonical_graph``, rewritten in place by ``restyle.runtime.subpixel`` where this stylizer uses it."""
        from restyle.runtime.subpixel import subpixel_upsampling

        if self._rewrites_graphs():
            subpixel_upsampling(canonical_graph)
        return canonical_graph

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session this stylizer runs: the optimised graph, rewritten where it uses rewrites.

        For benchmarks that time the network itself, as every front end runs it.
        """
        return self._session

    def _tiling_sessions(self) -> tuple[ort.InferenceSession, ort.InferenceSession, list[str]]:
        """Stats and apply graphs for thumbnail instance norm, built on first use."""
        with self._lock:
            if self._tiling is None:
                import onnx

                from restyle.runtime import thumbnail_norm
                from restyle.runtime.specialize import canonical_or_none

                proto = onnx.load(str(self.path))
                stats = self._create_session(thumbnail_norm.stats_model(proto).SerializeToString())
                apply_graph = thumbnail_norm.apply_model(proto)
                if self._rewrites_graphs() and not self._no_scratch:
                    canonical_graph = canonical_or_none(apply_graph)  # None: no scratch space, run it as built
                    if canonical_graph is not None:
                        apply_graph = self._rewritten(canonical_graph)
                apply = self._create_session(apply_graph.SerializeToString())
                self._tiling = (stats, apply, thumbnail_norm.stat_names(proto))
            return self._tiling

    def _canonical_model(self) -> onnx.ModelProto | None:
        """This model's canonical graph (``specialize.canonical``), built on first use and kept.

        None when it cannot be built for want of scratch space (no usable
        temporary folder, a full disk, a file-size limit): callers then run
        the exported graph, unrewritten. Not retried for this model.
        """
        with self._lock:
            if self._canonical is None and not self._no_scratch:
                import onnx

                from restyle.runtime.specialize import canonical_or_none

                self._canonical = canonical_or_none(onnx.load(str(self.path)))
                self._no_scratch = self._canonical is None
            return self._canonical

    # -- the raw network ----------------------------------------------------
    def style_vector(self, style_weights: StyleWeights) -> np.ndarray:
        """Any accepted form of style choice -> this model's ``(S,)`` weights summing to 1.

        The one place a choice becomes weights: a list and an ndarray of the
        same numbers give the same vector (both are normalised).
        """
        return style_vector(style_weights, self.style_names)

    def _weights(self, style_weights: StyleWeights, n: int) -> np.ndarray:
        """``(n, S)`` normalised weights: one row per image, or one choice broadcast to all of them."""
        if isinstance(style_weights, np.ndarray) and style_weights.ndim == 2:
            if style_weights.shape != (n, len(self.style_names)):
                raise UserError(f"style weights must have shape ({n}, {len(self.style_names)})")
            return np.stack([self.style_vector(row) for row in style_weights])
        return _rows(self.style_vector(style_weights), n)

    def _forward(
        self,
        session: ort.InferenceSession,
        batch: np.ndarray,
        weights: np.ndarray,
        extra: dict[str, np.ndarray] | None = None,
        outputs: list[str] | None = None,
    ) -> list[np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise UserError(f"expected an (N, 3, H, W) batch, got shape {batch.shape}")
        _, _, h, w = batch.shape
        padded = processing.reflect_pad(
            batch,
            processing.padded_size(h, self.stride, self.min_side),
            processing.padded_size(w, self.stride, self.min_side),
        )
        feed = {INPUT_IMAGE: np.ascontiguousarray(padded), INPUT_STYLE: weights, **(extra or {})}
        return session.run(outputs or [OUTPUT_IMAGE], feed)

    def run(self, batch: np.ndarray, style_weights: StyleWeights = None) -> np.ndarray:
        """The network on an NCHW float32 [0, 1] batch of any H, W; same shape out.

        ``style_weights``: None (first style), an index or name, ``{name: weight}``,
        or ``(S,)`` / ``(N, S)`` weights as a list or ndarray; every form is
        normalised to sum 1 (per row), so equal numbers mean equal output.
        """
        return self._run(batch, self._weights(style_weights, np.shape(batch)[0]))

    def _run(self, batch: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``run`` with ``(N, S)`` weights already resolved and normalised (not normalised twice)."""
        _, _, h, w = np.shape(batch)
        out = self._forward(self._session, batch, weights, extra=self._feed)[0]
        return out[:, :, :h, :w]

    def frozen(self, reference: np.ndarray, options: StylizeOptions | None = None) -> Stylizer:
        """A copy of this stylizer whose network uses fixed instance-norm statistics, measured on ``reference``.

        For frames that share their statistics (one video shot): the norms are
        measured once, on ``reference`` as the network would see it under
        ``options``, and folded with the style into the convolutions
        (``restyle.runtime.specialize``), so each frame runs a graph of
        convolutions, pads and resizes only. Measured at 512x512 on this CPU:
        about 10 % less time per frame than the full graph, and identical
        output for ``reference`` itself (max difference 1e-6). The copy serves
        one style (the one in ``options``); stylize the frames with the same
        ``options``.

        Without scratch space for the rewrite (``specialize.canonical``) the
        copy runs the tiling graph instead, which takes the same statistics
        as inputs: the same pictures, without the speed-up.
        """
        import copy

        from restyle.runtime.specialize import freeze_norms

        options = options or StylizeOptions()
        photo = _fitted(reference, options)
        vec = self.style_vector(options.style_weights)
        h, w = photo.shape[:2]
        scale = options.scale_for(h, w)
        network_input = resize(photo, max(1, round(h / scale)), max(1, round(w / scale)))
        stats = self.thumbnail_stats(network_input, vec)
        canonical_graph = self._canonical_model()
        twin = copy.copy(self)
        if canonical_graph is None:  # no scratch space for the rewrite: the same statistics, fed to the tiling graph
            twin._session, twin._feed = self._tiling_sessions()[1], stats
            return twin
        proto = self._rewritten(freeze_norms(canonical_graph, vec, stats))
        twin._session = self._create_session(proto.SerializeToString())
        return twin

    # -- the photo pipeline -------------------------------------------------
    def stylize(self, image: np.ndarray, options: StylizeOptions | None = None) -> np.ndarray:
        """Stylize an ``HxWx3`` float32 RGB [0, 1] photo; returns the same form (size per ``max_size``)."""
        options = options or StylizeOptions()
        photo = _fitted(image, options)
        if options.strength == 0:
            return photo.copy()
        vec = self.style_vector(options.style_weights)
        h, w = photo.shape[:2]
        scale = options.scale_for(h, w)
        net_h, net_w = max(1, round(h / scale)), max(1, round(w / scale))
        stylized = self._network(resize(photo, net_h, net_w), vec, options.tile)
        if (net_h, net_w) != (h, w):
            stylized = guided_upsample(stylized, photo) if scale > 1 else resize(stylized, h, w)
        return _postprocess(stylized, photo, options)

    def stylize_many(self, images: Sequence[np.ndarray], options: Sequence[StylizeOptions]) -> list[np.ndarray]:
        """``[stylize(images[i], options[i]) ...]``, sharing network calls where it can (micro-batching).

        Photos whose network input is the photo itself (no style scaling, no
        tiling) and of the same size are stacked into one network call; any
        other photo takes ``stylize`` on its own. Pre- and post-processing are
        those of ``stylize``, so every option is honoured on either path.
        """
        if len(images) != len(options):
            raise UserError(f"{len(images)} image(s) but {len(options)} option set(s)")
        out: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for i, (image, opts) in enumerate(zip(images, options)):
            photo = _fitted(image, opts)
            h, w = photo.shape[:2]
            if opts.strength == 0 or opts.scale_for(h, w) != 1 or self.tile_size(h, w, opts.tile) is not None:
                out[i] = self.stylize(photo, opts)
            else:
                groups.setdefault((h, w), []).append((i, photo, self.style_vector(opts.style_weights)))
        for members in groups.values():
            batch = np.concatenate([processing.to_nchw(photo) for _, photo, _ in members])
            result = self._run(batch, np.stack([vec for _, _, vec in members]))
            for (i, photo, _), one in zip(members, result):
                out[i] = _postprocess(processing.from_nchw(one[None]), photo, options[i])
        return [o for o in out if o is not None]

    def tile_size(self, height: int, width: int, tile: int | str | None) -> int | None:
        """The tile size the network input of this size will use, or None for one pass."""
        if tile == 0:
            return None
        if isinstance(tile, int):
            return tile if max(height, width) > tile else None
        return tiling.DEFAULT_TILE if height * width > AUTO_TILE_PIXELS else None

    def _network(self, image: np.ndarray, vec: np.ndarray, tile: int | str | None) -> np.ndarray:
        h, w = image.shape[:2]
        size = self.tile_size(h, w, tile)
        if size is None:  # padded while converting: one copy of the photo, not two
            height = processing.padded_size(h, self.stride, self.min_side)
            width = processing.padded_size(w, self.stride, self.min_side)
            out = self._run(processing.to_nchw(image, height, width), _rows(vec, 1))
            return processing.from_nchw(out[:, :, :h, :w])
        return self.stylize_tiled(image, vec, size)

    def thumbnail_stats(self, image: np.ndarray, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Instance-norm statistics of every layer, measured on a thumbnail of ``image``."""
        stats_session, _, names = self._tiling_sessions()
        thumb = fit_max_size(image, THUMBNAIL_SIDE)
        values = self._forward(stats_session, processing.to_nchw(thumb), _rows(vec, 1), outputs=names)
        return dict(zip(names, values, strict=True))

    def stylize_tiled(self, image: np.ndarray, vec: np.ndarray, tile: int) -> np.ndarray:
        """Overlapping tiles sharing thumbnail statistics, blended with feathered weights."""
        tile = max(self.min_side, tile // self.stride * self.stride)
        overlap = min(tiling.DEFAULT_OVERLAP, tile // 3 // self.stride * self.stride)
        stats = self.thumbnail_stats(image, vec)
        _, apply_session, _ = self._tiling_sessions()
        h, w = image.shape[:2]
        weights = _rows(vec, 1)
        out = np.zeros((h, w, 3), np.float32)
        total = np.zeros((h, w, 1), np.float32)
        for win in tiling.plan(h, w, tile, overlap, self.stride):
            patch = processing.to_nchw(image[win.y0 : win.y1, win.x0 : win.x1])
            result = self._forward(apply_session, patch, weights, extra=stats)[0]
            result = result[0, :, : win.y1 - win.y0, : win.x1 - win.x0].transpose(1, 2, 0)
            wt = tiling.weights(win, h, w, overlap)[:, :, None]
            out[win.y0 : win.y1, win.x0 : win.x1] += result * wt
            total[win.y0 : win.y1, win.x0 : win.x1] += wt
        out /= total
        return out


def _fitted(image: np.ndarray, options: StylizeOptions) -> np.ndarray:
    """The validated photo at its output size (``max_size``)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise UserError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    return fit_max_size(image, options.max_size)


def _postprocess(stylized: np.ndarray, photo: np.ndarray, options: StylizeOptions) -> np.ndarray:
    """Colour preservation and strength, in row bands so temporaries stay small on huge photos."""
    if options.strength >= 1 and not options.preserve_color:  # nothing to do: not even a copy onto itself
        return stylized
    h = photo.shape[0]
    for y0 in range(0, h, BAND_ROWS):
        band = slice(y0, min(h, y0 + BAND_ROWS))
        stylized[band] = processing.postprocess(stylized[band], photo[band], options.strength, options.preserve_color)
    return stylized


def _rows(vec: np.ndarray, n: int) -> np.ndarray:
    """One resolved ``(S,)`` vector as the network's ``(n, S)`` style input."""
    return np.ascontiguousarray(np.broadcast_to(vec, (n, vec.size)), dtype=np.float32)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy a rewrite may change, leaving the cached original intact."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out
