"""Resize-convolutions rewritten as sub-pixel convolutions: the same output, computed at the lower resolution.

Both networks upsample with "x2 resize, reflection pad 1, 3x3 convolution"
(``restyle.models.layers.UpsampleConv``; bilinear in ``fast``, nearest in
``johnson``). Every output pixel of that chain is a fixed linear combination
of a 3x3 neighbourhood of the *low-resolution* input, with one of four
weight sets chosen by the pixel's position in its 2x2 cell. So the chain is
one 3x3 convolution at the input's resolution with four times the output
channels, followed by ``DepthToSpace`` (Shi et al. 2016's sub-pixel layout).
This computes the same MACs, but ONNX Runtime then runs:

* no ``Resize`` and no reflection ``Pad`` at the high resolution (7 % and part
  of the 11 % of the fast network's kernel time in ``docs/performance.md``);
* a convolution with 4x the output channels on a 4x smaller map, which fills
  the CPU's vector registers better (the fast network's last layer has 3
  output channels, 12 after the rewrite).

Measured at 512x512 on this project's 2-core CPU with the bundled ``classics``:
see ``python -m bench graph_variants``.

Borders. For nearest upsampling the rewrite is exact with an edge pad of
the low-resolution input. For bilinear upsampling (half-pixel centres) it is
exact everywhere except the outermost row and column of the output, where
the reflection of the *upsampled* map cannot be written as any padding of the
low-resolution one; those four lines are recomputed by the original chain on
two-pixel strips of the input (a few percent of the work) and put in place,
so the rewritten graph matches the original to float rounding (tested).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from restyle.runtime.specialize import graph_consumers, prune_graph

# a Conv's sole reader of these kinds is moved in front of the interleaving so ORT can fuse it into the convolution
_ELEMENTWISE_ACTIVATIONS = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSigmoid"}


def _phase_matrix(mode: str) -> np.ndarray:
    """(2, 3, 3): for output phase p and conv tap k, the weights on the low-resolution neighbours r = -1, 0, +1.

    1-D: the upsampled map U at position m = 2i + p - 1 + k (tap k of output
    pixel 2i + p) is a combination of X[j - 1], X[j], X[j + 1], j = m // 2.
    """
    if mode == "nearest":
        by_parity = {0: (0.0, 1.0, 0.0), 1: (0.0, 1.0, 0.0)}
    else:  # bilinear, half-pixel centres: U[2j] = X[j-1]/4 + 3X[j]/4, U[2j+1] = 3X[j]/4 + X[j+1]/4
        by_parity = {0: (0.25, 0.75, 0.0), 1: (0.0, 0.75, 0.25)}
    m = np.zeros((2, 3, 3))
    for p in range(2):
        for k in range(3):
            j, parity = divmod(p - 1 + k, 2)
            for t, coef in enumerate(by_parity[parity]):
                if coef:
                    m[p, k, j + t] += coef  # offset j + t - 1, stored at index + 1
    return m


def subpixel_weights(w: np.ndarray, b: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The (4*Co, Ci, 3, 3) kernel and (4*Co,) bias at low resolution, channels in ``DepthToSpace`` DCR order."""
    m = _phase_matrix(mode)
    co, ci = w.shape[:2]
    kernel = np.einsum("ocKL,pKa,qLb->pqocab", w.astype(np.float64), m, m).reshape(4 * co, ci, 3, 3)
    return kernel.astype(np.float32), np.tile(b.astype(np.float64), 4).astype(np.float32)


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _resize_mode(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> str | None:
    """'nearest' or 'linear' for an x2 spatial Resize whose result the rewrite reproduces, else None."""
    mode = _text(_attr(node, "mode", "nearest"))
    coords = _text(_attr(node, "coordinate_transformation_mode", "half_pixel"))
    scales = inits.get(node.input[2]) if len(node.input) > 2 else None
    if scales is None or [float(s) for s in scales.reshape(-1)] != [1.0, 1.0, 2.0, 2.0]:
        return None
    if mode == "linear" and coords in ("half_pixel", "pytorch_half_pixel") and not _attr(node, "antialias", 0):
        return "linear"
    if (
        mode == "nearest"
        and coords in ("asymmetric", "half_pixel")
        and _text(_attr(node, "nearest_mode", ""))
        in (
            "floor",
            "round_prefer_floor",
            "round_prefer_ceil",
            "",
        )
    ):
        return "nearest"  # at exactly x2 these all pick source pixel i // 2
    return None


def _reflect_pad_1(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> bool:
    pads = inits.get(node.input[1]) if len(node.input) > 1 else None
    return (
        _text(_attr(node, "mode", "constant")) == "reflect"
        and pads is not None
        and [int(v) for v in pads.reshape(-1)] == [0, 0, 1, 1, 0, 0, 1, 1]
    )


def _plain_3x3(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> bool:
    return (
        node.op_type == "Conv"
        and node.input[1] in inits
        and inits[node.input[1]].shape[2:] == (3, 3)
        and int(_attr(node, "group", 1)) == 1
        and list(_attr(node, "strides", [1, 1])) == [1, 1]
        and list(_attr(node, "dilations", [1, 1])) == [1, 1]
        and list(_attr(node, "pads", [0, 0, 0, 0])) == [0, 0, 0, 0]
        and _text(_attr(node, "auto_pad", "NOTSET")) == "NOTSET"
    )


def subpixel_upsampling(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Rewrite every "Resize x2 -> reflection Pad 1 -> 3x3 Conv" chain in place; returns (model, chains rewritten).

    ``model`` should be canonical (``restyle.runtime.specialize.canonical``):
    weights as initializers, no ``Identity`` aliases. Chains that do not match
    exactly are left as they are.
    """
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = graph_consumers(g)
    rewritten = 0
    for resize in [n for n in g.node if n.op_type == "Resize"]:
        mode = _resize_mode(resize, inits)
        pads = consumers.get(resize.output[0], [])
        if mode is None or len(pads) != 1 or pads[0].op_type != "Pad" or not _reflect_pad_1(pads[0], inits):
            continue
        pad = pads[0]
        convs = consumers.get(pad.output[0], [])
        if len(convs) != 1 or not _plain_3x3(convs[0], inits):
            continue
        conv = convs[0]
        w = inits[conv.input[1]]
        b = inits[conv.input[2]] if len(conv.input) > 2 and conv.input[2] else np.zeros(w.shape[0], np.float32)
        readers = consumers.get(conv.output[0], [])
        activation = readers[0] if len(readers) == 1 and readers[0].op_type in _ELEMENTWISE_ACTIVATIONS else None
        _rewrite_chain(g, rewritten, resize, pad, conv, activation, w, b, mode)
        rewritten += 1
    if rewritten:
        prune_graph(g)
        onnx.checker.check_model(model)
    return model, rewritten


def _rewrite_chain(
    g: onnx.GraphProto,
    i: int,
    resize: onnx.NodeProto,
    pad: onnx.NodeProto,
    conv: onnx.NodeProto,
    activation: onnx.NodeProto | None,
    w: np.ndarray,
    b: np.ndarray,
    mode: str,
) -> None:
    p = f"restyle_subpixel_{i}"
    x = resize.input[0]
    final = activation.output[0] if activation is not None else conv.output[0]
    kernel, bias = subpixel_weights(w, b, mode)

    def const(name: str, value: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(value, f"{p}_{name}"))
        return f"{p}_{name}"

    def activated(name: str, nodes: list[onnx.NodeProto]) -> str:
        """``name`` passed through a copy of the chain's activation (if any), so ORT fuses it into the Conv."""
        if activation is None:
            return name
        nodes.append(_rewired(activation, f"{p}_{name}_act", name, f"{name}_act"))
        return f"{name}_act"

    nodes: list[onnx.NodeProto] = []
    edge = const("edge_pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    nodes.append(helper.make_node("Pad", [x, edge], [f"{p}_padded"], mode="edge", name=f"{p}_pad"))
    nodes.append(
        helper.make_node(
            "Conv",
            [f"{p}_padded", const("w", kernel), const("b", bias)],
            [f"{p}_phases"],
            kernel_shape=[3, 3],
            name=f"{p}_conv",
        )
    )
    phases = activated(f"{p}_phases", nodes)
    interleaved = f"{p}_interleaved" if mode == "linear" else final
    nodes.append(helper.make_node("DepthToSpace", [phases], [interleaved], blocksize=2, mode="DCR", name=f"{p}_d2s"))
    if mode == "linear":
        _exact_borders(nodes, const, activated, p, x, interleaved, final, resize, pad, conv)
    conv.output[0] = f"{p}_dead"  # the old chain's result is read by nobody now; prune_graph drops it
    if activation is not None:
        activation.output[0] = f"{p}_dead_act"
    position = list(g.node).index(activation if activation is not None else conv) + 1
    for node in reversed(nodes):
        g.node.insert(position, node)


def _rewired(node: onnx.NodeProto, name: str, first_input: str, output: str) -> onnx.NodeProto:
    """A copy of ``node`` (same op, attributes and other inputs) reading ``first_input`` and writing ``output``."""
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = name
    copy.input[0] = first_input
    del copy.output[:]
    copy.output.append(output)
    return copy


def _exact_borders(nodes, const, activated, p, x, interleaved, final, resize, pad, conv) -> None:
    """Replace the outermost rows and columns of ``interleaved`` by the original chain run on 2-pixel strips of ``x``."""
    starts = {
        "first": const("first_start", np.array([0], np.int64)),
        "last": const("last_start", np.array([-2], np.int64)),
    }
    two = const("two", np.array([2], np.int64))
    end = const("end", np.array([np.iinfo(np.int64).max], np.int64))
    one, minus_one = const("one", np.array([1], np.int64)), const("minus_one", np.array([-1], np.int64))
    zero = starts["first"]

    def strip(axis: int, which: str) -> str:
        name = f"{p}_{which}_{axis}"
        axes = const(f"axis_{axis}_{which}", np.array([axis], np.int64))
        stop = two if which == "first" else end
        nodes.append(helper.make_node("Slice", [x, starts[which], stop, axes], [f"{name}_in"], name=f"{name}_slice"))
        nodes.append(_rewired(resize, f"{name}_resize", f"{name}_in", f"{name}_up"))
        nodes.append(helper.make_node("Pad", [f"{name}_up", *pad.input[1:]], [f"{name}_pad"], mode="reflect"))
        nodes.append(_rewired(conv, f"{name}_conv", f"{name}_pad", f"{name}_conv"))
        result = activated(f"{name}_conv", nodes)
        keep = (zero, one) if which == "first" else (minus_one, end)
        nodes.append(helper.make_node("Slice", [result, *keep, axes], [f"{name}_line"], name=f"{name}_line"))
        return f"{name}_line"

    current = interleaved
    for axis, out in ((2, f"{p}_rows_fixed"), (3, final)):
        axes = const(f"axis_{axis}", np.array([axis], np.int64))
        inner = f"{p}_inner_{axis}"
        nodes.append(helper.make_node("Slice", [current, one, minus_one, axes], [inner], name=f"{inner}_slice"))
        first, last = strip(axis, "first"), strip(axis, "last")
        nodes.append(helper.make_node("Concat", [first, inner, last], [out], axis=axis, name=f"{out}_concat"))
        current = out
