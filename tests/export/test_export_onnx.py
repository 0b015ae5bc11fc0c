"""Export: checker, dynamic shapes, metadata round trip, parity (fp32 and fp16), bad inputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from restyle.cli import main
from restyle.contract import ModelMetadata
from restyle.export.parity import FP16_TOLERANCE, FP32_TOLERANCE, PARITY_SIZES
from restyle.models.serialization import load_model
from tests.export.models import EXPORT_OUTPUT, SUMMARY, checkpoint, exported


def _meta(path) -> ModelMetadata:
    proto = onnx.load(str(path))
    return ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})


def test_fp32_export_checks_and_metadata_round_trip() -> None:
    path = exported()
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert [proto.graph.input[0].name, dims[1]] == ["image", 3]
    assert all(isinstance(d, str) and d for d in (dims[0], dims[2], dims[3])), dims  # N, H, W dynamic
    meta = _meta(path)
    assert (meta.arch, meta.stride, meta.style_names, meta.precision) == ("fast", 4, ["stripes", "dots"], "fp32")
    assert meta.summary == SUMMARY
    assert set(meta.contract["inputs"]) == {"image", "style"}
    # The parity report is recorded as measured (the exporter itself refuses a failing one).
    assert set(meta.parity["max_abs_error"]) == {f"{h}x{w}" for h, w in PARITY_SIZES}
    assert meta.parity["tolerance"] == FP32_TOLERANCE


def test_fp32_matches_pytorch_on_new_shapes_and_blends() -> None:
    import torch

    net, _ = load_model(checkpoint())
    session = ort.InferenceSession(str(exported()), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for n, h, w in [(1, 64, 96), (3, 40, 136)]:
        x = rng.random((n, 3, h, w), dtype=np.float32)
        weights = rng.random((n, 2), dtype=np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x), torch.from_numpy(weights)).numpy()
        got = session.run(None, {"image": x, "style": weights})[0]
        assert np.abs(got - ref).max() <= FP32_TOLERANCE


def test_fp16_export_within_stated_bound() -> None:
    """Measured here, on shapes and blends the exporter's own parity check never saw."""
    import torch

    meta = _meta(exported(fp16=True))
    assert meta.precision == "fp16" and meta.parity["tolerance"] == FP16_TOLERANCE
    net, _ = load_model(checkpoint())
    session = ort.InferenceSession(str(exported(fp16=True)), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    x = rng.random((2, 3, 72, 120), dtype=np.float32)
    weights = rng.random((2, 2), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x), torch.from_numpy(weights)).numpy()
    error = np.abs(session.run(None, {"image": x, "style": weights})[0] - ref).max()
    assert error <= FP16_TOLERANCE


def test_fp16_graph_keeps_instance_norm_in_float32() -> None:
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(exported(fp16=True))))
    graph = proto.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    initializers = {i.name for i in graph.initializer}
    norms = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    assert norms, "no InstanceNormalization nodes (the runtime's tiling needs them)"
    for node in norms:  # statistics and their affine inputs in float32
        assert {types[name] for name in [*node.input, *node.output]} == {onnx.TensorProto.FLOAT}, node.name
    # The per-style affine tables (style @ table) stay float32; convolution weights are halved.
    tables = [i for n in graph.node if n.op_type == "MatMul" for i in n.input if i in initializers]
    convs = [n.input[1] for n in graph.node if n.op_type == "Conv" and n.input[1] in initializers]
    assert tables and {types[t] for t in tables} == {onnx.TensorProto.FLOAT}
    assert convs and {types[c] for c in convs} == {onnx.TensorProto.FLOAT16}


def test_cli_export_prints_parity() -> None:
    text = EXPORT_OUTPUT[exported()]
    assert "parity OK" in text and text.count("max abs error") == 2


def test_not_a_checkpoint_is_a_clear_error(tmp_path, capsys) -> None:
    bogus = tmp_path / "final.pt"
    bogus.write_bytes(b"not a checkpoint")
    out = tmp_path / "x.onnx"
    assert main(["export", str(bogus), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not a restyle model file" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(out)]) == 2


@pytest.mark.slow
def test_dynamo_exporter_default_path(tmp_path) -> None:
    """The default (dynamo) exporter: slow (~35 s on 2 cores), so the other tests use torchscript."""
    path = exported(arch="johnson", exporter="dynamo")
    meta = _meta(path)
    assert meta.exporter == "dynamo" and meta.arch == "johnson"
    assert max(meta.parity["max_abs_error"].values()) <= FP32_TOLERANCE
