"""Specialised graphs: a fixed style folded into the norms, and frozen statistics folded into the convolutions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from restyle.imaging import decode_image, fit_max_size
from restyle.runtime import StylizeOptions, Stylizer
from restyle.runtime.specialize import fold_style, freeze_norms
from tests.conftest import SAMPLE_PHOTO
from tests.export.models import exported


@pytest.fixture(scope="module", params=["fast", "lite"])
def stylizer(request: pytest.FixtureRequest) -> Stylizer:
    """Both the reflection-padded ``fast`` network and ``lite``, which pads inside its convolutions."""
    return Stylizer(exported(request.param), provider="cpu", threads=2)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    image = fit_max_size(decode_image(SAMPLE_PHOTO), 96)
    return np.ascontiguousarray(image[: image.shape[0] // 4 * 4, : image.shape[1] // 4 * 4])


def _run(stylizer: Stylizer, proto: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    session = stylizer._create_session(proto.SerializeToString())
    style = np.zeros((1, len(stylizer.style_names)), np.float32)  # ignored by a specialised graph
    return session.run(None, {"image": image.transpose(2, 0, 1)[None], "style": style})[0]


def test_fold_style_gives_the_blend_it_was_built_for_without_the_style_ops(stylizer, photo) -> None:
    vec = np.array([0.3, 0.7], np.float32)
    proto = fold_style(onnx.load(str(stylizer.path)), vec)
    ops = Counter(n.op_type for n in proto.graph.node)
    assert ops["MatMul"] == 0 and ops["Mul"] == 0 and ops["InstanceNormalization"] > 0
    expected = stylizer.run(photo.transpose(2, 0, 1)[None], vec)
    np.testing.assert_allclose(_run(stylizer, proto, photo), expected, atol=2e-5)
    other = stylizer.run(photo.transpose(2, 0, 1)[None], [1, 0])
    assert np.abs(other - expected).mean() > 1e-3  # the fold did pick this blend, not any


def test_frozen_statistics_of_the_image_itself_reproduce_the_full_network(stylizer, photo) -> None:
    vec = stylizer.style_vector("dots")
    stats = stylizer.thumbnail_stats(photo, vec)
    proto = freeze_norms(onnx.load(str(stylizer.path)), vec, stats)
    ops = Counter(n.op_type for n in proto.graph.node)
    assert ops["InstanceNormalization"] == 0 and ops["MatMul"] == 0  # only convolutions, pads, resizes left
    expected = stylizer.run(photo.transpose(2, 0, 1)[None], vec)
    np.testing.assert_allclose(_run(stylizer, proto, photo), expected, atol=2e-5)


def test_frozen_stylizer_uses_the_reference_statistics_for_other_frames(stylizer, photo) -> None:
    options = StylizeOptions(style_weights="dots")
    frozen = stylizer.frozen(photo, options)
    np.testing.assert_allclose(frozen.stylize(photo, options), stylizer.stylize(photo, options), atol=2e-5)
    darker = photo * 0.5  # instance norm would undo the darkening; frozen statistics keep it
    full, fixed = stylizer.stylize(darker, options), frozen.stylize(darker, options)
    assert np.abs(full - fixed).mean() > 1e-3
    assert stylizer.stylize(photo, options) is not None  # the original stylizer is untouched
    np.testing.assert_allclose(stylizer.stylize(photo, options), frozen.stylize(photo, options), atol=2e-5)


def test_statistics_missing_or_a_graph_without_style_norms_is_refused(stylizer, photo) -> None:
    model = onnx.load(str(stylizer.path))
    with pytest.raises(ValueError, match="statistics missing"):
        freeze_norms(model, [1, 0], {})
    plain = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Relu", ["image"], ["stylized"])],
            "g",
            [onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, 3, 4, 4])],
            [onnx.helper.make_tensor_value_info("stylized", onnx.TensorProto.FLOAT, [1, 3, 4, 4])],
        ),
        ir_version=8,
        opset_imports=[onnx.helper.make_opsetid("", 18)],
    )
    with pytest.raises(ValueError, match="no instance norms"):
        fold_style(plain, [1.0])
