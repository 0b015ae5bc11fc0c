"""Stylizer: raw network, options, tiling, guided upsampling, providers, threads (real ONNX Runtime)."""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import onnxruntime as ort
import pytest
from skimage import data

from restyle.contract import style_vector
from restyle.errors import UserError
from restyle.imaging import decode_image, resize
from restyle.runtime import ProviderUnavailable, StylizeOptions, Stylizer, processing
from restyle.runtime.guided import guided_upsample
from restyle.runtime.providers import gpu_present
from tests.conftest import SAMPLE_PHOTO
from tests.export.models import exported


@pytest.fixture(scope="module")
def stylizer() -> Stylizer:
    return Stylizer(exported(), provider="cpu", threads=2)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return decode_image(SAMPLE_PHOTO)


def test_run_pads_odd_sizes_and_crops_back(stylizer: Stylizer) -> None:
    x = np.random.default_rng(0).random((2, 3, 37, 51), dtype=np.float32)
    out = stylizer.run(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    tiny = stylizer.run(np.full((1, 3, 1, 1), 0.5, np.float32))  # below the network's minimum size
    assert tiny.shape == (1, 3, 1, 1)


def test_style_weights_select_and_blend(stylizer: Stylizer) -> None:
    x = np.random.default_rng(1).random((1, 3, 48, 48), dtype=np.float32)
    a, b = stylizer.run(x, "stripes"), stylizer.run(x, 1)
    mix = stylizer.run(x, {"stripes": 1, "dots": 1})
    assert np.abs(a - b).mean() > 1e-3  # the two styles differ
    assert np.abs(mix - a).mean() > 1e-4 and np.abs(mix - b).mean() > 1e-4
    with pytest.raises(UserError):
        style_vector("nope", stylizer.style_names)
    with pytest.raises(UserError):
        style_vector([1.0, -1.0], stylizer.style_names)


def test_a_list_and_an_ndarray_of_the_same_weights_give_the_same_output(stylizer: Stylizer) -> None:
    x = np.random.default_rng(2).random((2, 3, 40, 40), dtype=np.float32)
    expected = stylizer.run(x, [1, 1])
    np.testing.assert_array_equal(stylizer.run(x, np.array([1, 1])), expected)
    np.testing.assert_array_equal(stylizer.run(x, np.array([[1, 1], [2, 2]])), expected)  # per row too
    np.testing.assert_array_equal(stylizer.run(x, {"stripes": 3, "dots": 3}), expected)
    with pytest.raises(UserError, match="non-negative"):
        stylizer.run(x, np.array([[1, 1], [0, 0]]))


def test_stylize_many_equals_stylize_one_by_one(stylizer: Stylizer, photo: np.ndarray) -> None:
    small = resize(photo, 48, 72)
    images = [small, small, resize(photo, 40, 40), small, small]
    options = [
        StylizeOptions(style_weights="stripes", strength=0.8, preserve_color=True),
        StylizeOptions(style_weights="dots"),  # same size as the first: one network call for both
        StylizeOptions(),
        StylizeOptions(style_scale=2),  # rescaled: takes stylize on its own
        StylizeOptions(strength=0.0, max_size=36),
    ]
    many = stylizer.stylize_many(images, options)
    for image, opts, got in zip(images, options, many, strict=True):
        np.testing.assert_allclose(got, stylizer.stylize(image, opts), atol=1e-5)
    with pytest.raises(UserError):
        stylizer.stylize_many(images, options[:2])


def test_strength_zero_returns_the_original(stylizer: Stylizer, photo: np.ndarray) -> None:
    out = stylizer.stylize(photo, StylizeOptions(strength=0.0))
    assert np.array_equal(out, photo)
    full = stylizer.stylize(photo)
    half = stylizer.stylize(photo, StylizeOptions(strength=0.5))
    np.testing.assert_allclose(half, (photo + full) / 2, atol=1e-5)


def test_preserve_color_keeps_chroma(stylizer: Stylizer, photo: np.ndarray) -> None:
    out = stylizer.stylize(photo, StylizeOptions(preserve_color=True))
    plain = stylizer.stylize(photo)
    chroma = lambda img: processing.rgb_to_ycc(img)[..., 1:]  # noqa: E731
    inside = (out > 0.01).all(axis=2) & (out < 0.99).all(axis=2)  # ignore pixels clipped to the gamut
    assert np.abs(chroma(out) - chroma(photo))[inside].max() < 1e-4
    assert np.abs(chroma(plain) - chroma(photo)).mean() > 0.01  # without it, chroma does change
    y = lambda img: processing.rgb_to_ycc(img)[..., 0]  # noqa: E731
    assert np.abs(y(out) - y(plain))[inside].max() < 1e-4


def test_max_size_limits_the_longest_side(stylizer: Stylizer, photo: np.ndarray) -> None:
    out = stylizer.stylize(photo, StylizeOptions(max_size=200))
    assert max(out.shape[:2]) == 200 and out.shape[2] == 3


def test_tiled_matches_whole_image_on_a_mid_size_photo(stylizer: Stylizer) -> None:
    image = data.astronaut().astype(np.float32) / 255.0  # 512x512
    whole = stylizer.stylize(image, StylizeOptions(tile=0))
    tiled = stylizer.stylize(image, StylizeOptions(tile=320))
    diff = np.abs(whole - tiled)
    assert diff.mean() < 2e-3 and np.percentile(diff, 99) < 0.03, (diff.mean(), np.percentile(diff, 99))
    # Without shared (thumbnail) statistics every tile normalises itself: visibly different.
    vec = style_vector(None, stylizer.style_names)
    own = np.zeros_like(image)
    for y0, x0 in [(0, 0), (0, 256), (256, 0), (256, 256)]:
        tile = processing.to_nchw(image[y0 : y0 + 256, x0 : x0 + 256])
        own[y0 : y0 + 256, x0 : x0 + 256] = processing.from_nchw(stylizer.run(tile, vec))
    assert np.abs(own - whole).mean() > 3 * diff.mean()


def test_style_scale_upsamples_with_photo_edges(stylizer: Stylizer, photo: np.ndarray) -> None:
    out = stylizer.stylize(photo, StylizeOptions(style_scale=2))
    assert out.shape == photo.shape
    auto = stylizer.stylize(photo, StylizeOptions(style_scale="auto"))  # small photo: no change
    np.testing.assert_allclose(auto, stylizer.stylize(photo), atol=1e-6)
    # A stand-in stylization that follows the photo: guided upsampling restores edges bicubic loses.
    h, w = photo.shape[0] // 2, photo.shape[1] // 2
    low = resize(photo, h, w)
    bicubic = resize(low, *photo.shape[:2])
    guided = guided_upsample(low, photo)
    assert np.abs(guided - photo).mean() < 0.5 * np.abs(bicubic - photo).mean()


def test_options_are_validated() -> None:
    for bad in (dict(strength=1.5), dict(max_size=0), dict(style_scale=0), dict(tile=10)):
        with pytest.raises(UserError):
            StylizeOptions(**bad)


def test_concurrent_calls_share_one_session(stylizer: Stylizer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four threads are inside one and the same ``InferenceSession.run`` at once, and no call makes a session."""
    images = [np.random.default_rng(i).random((64, 80, 3), dtype=np.float32) for i in range(4)]
    expected = [stylizer.stylize(im) for im in images]
    created: list[ort.InferenceSession] = []
    calls: list[tuple[int, ort.InferenceSession]] = []
    lock = threading.Lock()
    meet = threading.Barrier(len(images), timeout=60)  # the timeout is a safety net: calls kept apart fail here
    init, run = ort.InferenceSession.__init__, ort.InferenceSession.run

    def counting_init(self: ort.InferenceSession, *args: object, **kwargs: object) -> None:
        created.append(self)
        init(self, *args, **kwargs)

    def meeting_run(self: ort.InferenceSession, *args: object, **kwargs: object) -> object:
        with lock:
            calls.append((threading.get_ident(), self))
            first_four = len(calls) <= len(images)
        if first_four:
            meet.wait()  # every thread has entered a session's run before any goes on: the calls overlap
        return run(self, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "__init__", counting_init)
    monkeypatch.setattr(ort.InferenceSession, "run", meeting_run)
    with concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
        got = list(pool.map(stylizer.stylize, images))
    assert created == []  # no call built a session of its own
    assert len({thread for thread, _ in calls[: len(images)]}) == len(images)  # four threads, at the same time...
    assert all(session is stylizer.session for _, session in calls)  # ...in the stylizer's one session
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_fp16_model_runs_close_to_fp32(stylizer: Stylizer, photo: np.ndarray) -> None:
    half = Stylizer(exported(fp16=True), provider="cpu")
    assert half.info.precision == "fp16"
    assert np.abs(half.stylize(photo) - stylizer.stylize(photo)).max() < 0.05


def test_named_provider_is_never_a_silent_fallback() -> None:
    with pytest.raises(UserError):
        Stylizer(exported(), provider="npu")
    if gpu_present():
        pytest.skip("a GPU is present: cuda is expected to work here")
    for name in ("cuda", "tensorrt"):
        with pytest.raises(ProviderUnavailable):
            Stylizer(exported(), provider=name)
    assert Stylizer(exported(), provider="auto").providers == ["CPUExecutionProvider"]


def test_optimized_graph_is_cached_and_reused_with_identical_output(tmp_path) -> None:
    x = np.random.default_rng(7).random((1, 3, 40, 44), dtype=np.float32)
    first = Stylizer(exported(), provider="cpu", threads=1, cache_dir=tmp_path)
    saved = list((tmp_path / "ort-optimized").glob("*.onnx"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    stamp = saved[0].stat().st_mtime_ns
    again = Stylizer(exported(), provider="cpu", threads=1, cache_dir=tmp_path)
    assert saved[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    np.testing.assert_allclose(again.run(x), first.run(x), atol=1e-6)
    saved[0].write_bytes(b"not a model")  # a damaged cache file is rebuilt, never an error
    third = Stylizer(exported(), provider="cpu", threads=1, cache_dir=tmp_path)
    np.testing.assert_allclose(third.run(x), first.run(x), atol=1e-6)
    assert saved[0].stat().st_size > 100


def test_a_cache_write_that_fails_leaves_no_file_and_the_model_runs(tmp_path, monkeypatch) -> None:
    """ONNX Runtime failing part way through the cache file (disk full): no partial file, the session still runs."""
    x = np.random.default_rng(8).random((1, 3, 40, 44), dtype=np.float32)
    reference = Stylizer(exported(), provider="cpu", threads=1, cache_dir=tmp_path / "roomy").run(x)
    real = Stylizer._create_session

    def cut_short(self, model, optimize=True, save_to=None):
        if save_to is not None:
            save_to.write_bytes(b"\x08\x07\x12")  # what a write cut short leaves behind
            raise UserError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf serialization failed.")
        return real(self, model, optimize, save_to)

    monkeypatch.setattr(Stylizer, "_create_session", cut_short)
    starved = Stylizer(exported(), provider="cpu", threads=1, cache_dir=tmp_path / "full")
    assert [p for p in (tmp_path / "full").rglob("*") if p.is_file()] == []
    np.testing.assert_allclose(starved.run(x), reference, atol=1e-6)


def test_publish_moves_only_a_written_scratch_file_into_the_cache(tmp_path) -> None:
    from restyle.runtime import optimized_cache

    cached = tmp_path / "graph.onnx"
    empty = optimized_cache.scratch_file(cached)
    assert empty is not None and empty.parent == tmp_path and empty.name.startswith(".graph.onnx.")
    assert not optimized_cache.publish(empty, cached)  # nothing was written into it: never a cache file
    assert list(tmp_path.iterdir()) == []
    written = optimized_cache.scratch_file(cached)
    written.write_bytes(b"a graph")
    assert optimized_cache.publish(written, cached)
    assert list(tmp_path.iterdir()) == [cached] and cached.read_bytes() == b"a graph"
    assert optimized_cache.scratch_file(tmp_path / "no-such-folder" / "graph.onnx") is None
