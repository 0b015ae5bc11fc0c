"""Thumbnail instance normalisation for tiled stylization (URST, Chen et al. 2022).

Instance norm normalises every channel with the mean and variance of the
*whole* input. Run tile by tile, each tile would use its own statistics: a
sky tile and a forest tile get different contrast and colour, and the seams
show even with perfect blending. Exact global statistics would need one full
pass over all tiles per normalisation layer (~30 passes). URST's answer, used
here: run the network once on a thumbnail of the whole photo, record every
instance-norm layer's mean and 1/std, and normalise every tile with those.
All tiles then share one set of statistics, so they agree with each other,
and the statistics of a ~1 MP thumbnail are close to the full image's.

Both helper graphs are derived from the exported ONNX file by graph surgery
on its ``InstanceNormalization`` nodes, so any restyle model (bundled, user
or freshly exported) supports tiling without a special export:

* the *stats* graph = the original plus outputs ``mean_i``, ``rstd_i`` per node;
* the *apply* graph = every ``InstanceNormalization(X, scale, B)`` replaced by
  ``(X - mean_i) * rstd_i * scale + B`` with ``mean_i``/``rstd_i`` as inputs.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

PREFIX = "restyle_in"


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    vis = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    return {v.name: v.type.tensor_type.elem_type for v in vis}


def _norm_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    nodes = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    if not nodes:
        raise ValueError("the model has no InstanceNormalization nodes; tiling needs them")
    return nodes


def _eps(node: onnx.NodeProto) -> float:
    return next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)


def _reduce_mean(opset: int, x: str, out: str, axes_name: str) -> onnx.NodeProto:
    if opset >= 18:
        return helper.make_node("ReduceMean", [x, axes_name], [out], keepdims=1)
    return helper.make_node("ReduceMean", [x], [out], axes=[2, 3], keepdims=1)


def _stat_value_info(name: str, elem: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, ["N", f"{name}_C", 1, 1])


def stat_names(model: onnx.ModelProto) -> list[str]:
    """Names of the statistics, in graph order: ``mean_0, rstd_0, mean_1, ...``."""
    return [f"{PREFIX}_{kind}_{i}" for i in range(len(_norm_nodes(model))) for kind in ("mean", "rstd")]


def stats_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """The original graph, also returning each instance norm's input mean and 1/std."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    opset = _opset(out)
    types = _elem_types(out)
    axes = f"{PREFIX}_axes"
    g.initializer.append(numpy_helper.from_array(__import__("numpy").array([2, 3], "int64"), axes))
    for i, node in enumerate(_norm_nodes(out)):
        x = node.input[0]
        elem = types.get(x, TensorProto.FLOAT)
        mean, rstd = f"{PREFIX}_mean_{i}", f"{PREFIX}_rstd_{i}"
        t = f"{PREFIX}_t{i}"
        eps = helper.make_tensor(f"{t}_eps", elem, [], [_eps(node)])
        g.node.extend(
            [
                _reduce_mean(opset, x, mean, axes),
                helper.make_node("Sub", [x, mean], [f"{t}_d"]),
                helper.make_node("Mul", [f"{t}_d", f"{t}_d"], [f"{t}_sq"]),
                _reduce_mean(opset, f"{t}_sq", f"{t}_var", axes),
                helper.make_node("Constant", [], [f"{t}_epsc"], value=eps),
                helper.make_node("Add", [f"{t}_var", f"{t}_epsc"], [f"{t}_ve"]),
                helper.make_node("Sqrt", [f"{t}_ve"], [f"{t}_std"]),
                helper.make_node("Reciprocal", [f"{t}_std"], [rstd]),
            ]
        )
        g.output.extend([_stat_value_info(mean, elem), _stat_value_info(rstd, elem)])
    onnx.checker.check_model(out)
    return out


def apply_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with every instance norm using statistics given as inputs instead of its own."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    types = _elem_types(out)
    shape4 = f"{PREFIX}_shape4"
    g.initializer.append(numpy_helper.from_array(__import__("numpy").array([1, -1, 1, 1], "int64"), shape4))
    replaced = 0
    new_nodes: list[onnx.NodeProto] = []
    for node in g.node:
        if node.op_type != "InstanceNormalization":
            new_nodes.append(node)
            continue
        i = replaced
        replaced += 1
        x, scale, bias = node.input
        elem = types.get(x, TensorProto.FLOAT)
        mean, rstd = f"{PREFIX}_mean_{i}", f"{PREFIX}_rstd_{i}"
        t = f"{PREFIX}_a{i}"
        g.input.extend([_stat_value_info(mean, elem), _stat_value_info(rstd, elem)])
        new_nodes.extend(
            [
                helper.make_node("Sub", [x, mean], [f"{t}_d"]),
                helper.make_node("Mul", [f"{t}_d", rstd], [f"{t}_n"]),
                helper.make_node("Reshape", [scale, shape4], [f"{t}_s4"]),
                helper.make_node("Reshape", [bias, shape4], [f"{t}_b4"]),
                helper.make_node("Mul", [f"{t}_n", f"{t}_s4"], [f"{t}_ns"]),
                helper.make_node("Add", [f"{t}_ns", f"{t}_b4"], [node.output[0]]),
            ]
        )
    if not replaced:
        raise ValueError("the model has no InstanceNormalization nodes; tiling needs them")
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.checker.check_model(out)
    return out
