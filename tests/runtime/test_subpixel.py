"""The sub-pixel rewrite of resize-convolutions: same output at every size, fewer high-resolution ops."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from restyle.runtime import StylizeOptions, Stylizer
from restyle.runtime.specialize import canonical, freeze_norms
from restyle.runtime.subpixel import subpixel_upsampling
from tests.export.models import exported


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _run(proto: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    session = _session(proto)
    styles = session.get_inputs()[1].shape[1]
    return session.run(None, {"image": image, "style": np.full((1, styles), 1.0 / styles, np.float32)})[0]


def _rewritten(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return subpixel_upsampling(copy)


def _ops(proto: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in proto.graph.node]


@pytest.mark.parametrize(("arch", "mode"), [("fast", "bilinear"), ("johnson", "nearest"), ("lite", "bilinear")])
@pytest.mark.parametrize("size", [(64, 64), (36, 20), (16, 24), (16, 16)])
def test_rewritten_graph_matches_the_exported_one_at_every_size_and_border(arch, mode, size) -> None:
    """Exact to float rounding, the outermost rows and columns included, down to the smallest input (16 px)."""
    proto = canonical(onnx.load(str(exported(arch))))
    fast, n = _rewritten(proto)
    assert n == {"fast": 2, "johnson": 2, "lite": 2}[arch]  # fast, lite: up + out layers (bilinear); johnson: two ups
    image = np.random.default_rng(3).random((1, 3, *size), np.float32)
    want, got = _run(proto, image), _run(fast, image)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 2e-5
    # what the border strips are for: the first and last rows and columns are right, not just the inside
    for edge in (got[..., 0, :] - want[..., 0, :], got[..., -1, :] - want[..., -1, :], got[..., 0] - want[..., 0]):
        assert np.abs(edge).max() < 2e-5


def test_rewritten_graph_has_no_full_resolution_resize_and_convolves_at_low_resolution() -> None:
    proto = canonical(onnx.load(str(exported("fast"))))
    fast, _ = _rewritten(proto)
    assert _ops(proto).count("Resize") == 2
    # only the border strips still resize (2-pixel strips): four per rewritten chain
    assert _ops(fast).count("Resize") == 8
    assert _ops(fast).count("DepthToSpace") == 2
    inits = {i.name: i for i in fast.graph.initializer}
    kernels = [
        tuple(inits[n.input[1]].dims) for n in fast.graph.node if n.name.endswith("_conv") and "subpixel" in n.name
    ]
    assert (4 * 3, 24, 3, 3) in kernels  # the RGB output layer: 12 phase channels at half resolution


def test_activation_after_the_convolution_moves_in_front_of_the_interleaving() -> None:
    """In a frozen graph the up layer is Conv -> Relu; the Relu must follow each new Conv (ORT fuses it)."""
    stylizer = Stylizer(exported("fast"), provider="cpu", threads=2)
    photo = np.random.default_rng(4).random((32, 40, 3), np.float32)
    vec = stylizer.style_vector(None)
    frozen = freeze_norms(canonical(onnx.load(str(exported("fast")))), vec, stylizer.thumbnail_stats(photo, vec))
    fast, n = _rewritten(frozen)
    assert n == 2
    producers = {o: node for node in fast.graph.node for o in node.output}
    relus = [node for node in fast.graph.node if node.op_type == "Relu"]
    assert relus and all(producers[r.input[0]].op_type == "Conv" for r in relus)
    image = photo.transpose(2, 0, 1)[None]
    assert np.abs(_run(fast, image) - _run(frozen, image)).max() < 2e-5


def test_chains_that_do_not_match_are_left_alone() -> None:
    """A Resize whose Pad is not a 1-pixel reflection is not the chain the weights were derived for."""
    proto = canonical(onnx.load(str(exported("fast"))))
    for init in proto.graph.initializer:  # turn every reflection pad of 1 into 2: nothing matches any more
        if init.data_type == onnx.TensorProto.INT64 and list(onnx.numpy_helper.to_array(init)) == [
            0,
            0,
            1,
            1,
            0,
            0,
            1,
            1,
        ]:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64), init.name))
    before = proto.SerializeToString()
    after, n = _rewritten(proto)
    assert n == 0
    assert after.SerializeToString() == before


def test_stylizer_on_cpu_runs_the_rewrite_and_gives_the_same_pictures(tmp_path) -> None:
    """Plain, frozen and tiled paths all use the rewritten graph on the CPU, with the exported graph's output."""
    photo = np.random.default_rng(5).random((136, 160, 3), np.float32)
    fast = Stylizer(exported("fast"), provider="cpu", threads=2, cache_dir=tmp_path / "a")
    plain = Stylizer(exported("fast"), provider="cpu", threads=2, cache_dir=tmp_path / "b")
    plain._rewrites_graphs = lambda: False  # type: ignore[method-assign]  # the exported graph, for reference
    plain._session = plain._load_optimized()
    assert fast._rewrites_graphs()
    running = {node.op_type for node in onnx.load(next((tmp_path / "a").rglob("*.onnx"))).graph.node}
    assert "DepthToSpace" in running
    for options in (StylizeOptions(), StylizeOptions(tile=64)):
        assert np.abs(fast.stylize(photo, options) - plain.stylize(photo, options)).max() < 1e-4
    assert np.abs(fast.frozen(photo).stylize(photo) - plain.frozen(photo).stylize(photo)).max() < 1e-4
    again = Stylizer(exported("fast"), provider="cpu", threads=2, cache_dir=tmp_path / "a")  # from the cache
    assert np.array_equal(again.stylize(photo), fast.stylize(photo))


def test_fp16_models_keep_the_exported_graph(tmp_path) -> None:
    assert not Stylizer(exported("fast", fp16=True), provider="cpu", cache_dir=tmp_path)._rewrites_graphs()
