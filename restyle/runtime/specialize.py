"""Specialised graphs: one style fixed, and optionally the instance-norm statistics frozen.

A restyle ONNX model takes the style as an input, so every conditional
instance norm is ``InstanceNormalization -> Mul(style @ gamma) -> Add(style @ beta)``:
two full-resolution element-wise passes per layer that ONNX Runtime cannot
fuse (ORT's profiler, ``python -m bench op_profile``, puts the ``Mul`` alone at
about 5 % of the bundled fast network's kernel time at 512x512). With the style
vector known, both fold into the norm's own scale and bias (:func:`fold_style`).

With the statistics known as well (measured once on a thumbnail, or once per
video shot), each instance norm is a per-channel affine map and folds into
the convolution before it (:func:`freeze_norms`): the norm, its two
element-wise ops and the ReLU's separate pass disappear (ORT fuses Conv+ReLU),
and the graph is convolutions, pads and resizes only.

Both are graph rewrites of the exported file (no re-export, so user and
bundled models alike get them). The rewritten graph keeps the ``style`` input
(unused) so callers feed every model the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from restyle.contract import INPUT_STYLE
from restyle.runtime.thumbnail_norm import stat_names

log = logging.getLogger(__name__)

CANONICAL_MARK = "restyle.canonical"  # metadata key set on canonical graphs, so they are not rebuilt


class ScratchUnavailable(RuntimeError):
    """The canonical graph could not be built: no scratch folder, or ONNX Runtime could not write its file there.

    Callers run the graph as it was exported instead (:func:`canonical_or_none`);
    the canonical form only enables rewrites that make it faster.
    """


def canonical(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` after ONNX Runtime's basic (portable) optimisations: constants folded, Identity nodes gone.

    Exporters differ (the torchscript exporter emits ``Constant`` subgraphs
    for every parameter and ``Identity`` aliases for tied weights), so the
    rewrites below match patterns on this canonical form only. It costs an
    ORT session and a scratch file, and depends on the model alone: callers
    that specialise one model repeatedly (``Stylizer.frozen``, once per video
    shot) build it once and pass it in; a marked graph is returned as it is.

    ORT hands the optimised graph back only as a file, so this needs scratch
    space: with no usable temporary folder, or when the write fails (disk
    full, a file-size limit), it raises :class:`ScratchUnavailable`, and the
    partial file goes with the scratch folder.
    """
    if any(p.key == CANONICAL_MARK for p in model.metadata_props):
        return model
    import tempfile
    from pathlib import Path

    import onnxruntime as ort
    from google.protobuf.message import DecodeError

    data = model.SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    try:
        with tempfile.TemporaryDirectory(prefix="restyle-canonical-", ignore_cleanup_errors=True) as tmp:
            so.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
            try:
                ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - ORT reports a failed write as InvalidProtobuf
                so.optimized_model_filepath = ""
                ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])  # a bad model raises here
                raise ScratchUnavailable(f"ONNX Runtime could not write the optimised graph: {exc}") from exc
            out = onnx.load(so.optimized_model_filepath)
    except (OSError, DecodeError) as exc:  # no usable temporary folder, or a file cut short
        raise ScratchUnavailable(f"no scratch space for the optimised graph: {exc}") from exc
    out.metadata_props.add(key=CANONICAL_MARK, value="1")
    return out


def canonical_or_none(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """:func:`canonical`, or None when it needs scratch space that is missing or full (the caller keeps ``model``)."""
    try:
        return canonical(model)
    except ScratchUnavailable as exc:
        log.info("running the exported graph, without graph rewrites: %s", exc)
        return None


def _rewritable(model: onnx.ModelProto) -> onnx.ModelProto:
    """A canonical copy of ``model`` that the rewrites may change in place (the caller's proto stays intact)."""
    base = canonical(model)
    out = onnx.ModelProto()
    out.CopyFrom(base)
    return out


def graph_consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def graph_producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in graph.node for name in node.output}


def _style_parameter(name: str, producers: Mapping[str, onnx.NodeProto], inits: Mapping[str, np.ndarray]) -> str | None:
    """The (S, C) initializer behind ``name`` when it is ``Unsqueeze/Reshape(MatMul(style, P))``, else None."""
    node = producers.get(name)
    while node is not None and node.op_type in ("Unsqueeze", "Reshape", "Identity", "Cast"):
        node = producers.get(node.input[0])
    if node is None or node.op_type != "MatMul" or node.input[1] not in inits:
        return None
    source, feeder = node.input[0], producers.get(node.input[0])
    while feeder is not None and feeder.op_type in ("Cast", "Identity"):
        source, feeder = feeder.input[0], producers.get(feeder.input[0])
    return node.input[1] if source == INPUT_STYLE else None


def _other(node: onnx.NodeProto, name: str) -> str:
    a, b = node.input
    return b if a == name else a


def prune_graph(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody reads, and initializers no node reads."""
    needed = {o.name for o in graph.output}
    keep: list[onnx.NodeProto] = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def _norm_affine(model: onnx.ModelProto, vec: np.ndarray) -> list[tuple[onnx.NodeProto, np.ndarray, np.ndarray, str]]:
    """For each instance norm in graph order: (node, gamma, beta, name of the affine's output) under ``vec``.

    Raises ValueError when a norm is not followed by the ``Mul``/``Add`` of a
    style-conditioned affine (a graph restyle did not export).
    """
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producers, consumers = graph_producers(g), graph_consumers(g)
    vec = np.asarray(vec, np.float64).reshape(-1)
    found = []
    for node in g.node:
        if node.op_type != "InstanceNormalization":
            continue
        scale = inits[node.input[1]].astype(np.float64)
        bias = inits[node.input[2]].astype(np.float64)
        out = node.output[0]
        users = consumers.get(out, [])
        if len(users) != 1 or users[0].op_type != "Mul":
            raise ValueError(f"instance norm {out} is not followed by a style-conditioned scale")
        mul = users[0]
        gamma_name = _style_parameter(_other(mul, out), producers, inits)
        adds = consumers.get(mul.output[0], [])
        if gamma_name is None or len(adds) != 1 or adds[0].op_type != "Add":
            raise ValueError(f"instance norm {out} is not followed by a style-conditioned affine")
        add = adds[0]
        beta_name = _style_parameter(_other(add, mul.output[0]), producers, inits)
        if beta_name is None:
            raise ValueError(f"instance norm {out} is not followed by a style-conditioned shift")
        gamma = vec @ inits[gamma_name].astype(np.float64)
        beta = vec @ inits[beta_name].astype(np.float64)
        # y = (IN(x) * scale + bias) * gamma + beta
        affine_out = add.output[0]
        add.output[0] = f"{affine_out}_restyle_dead"  # the caller hands this name to the node that replaces the affine
        found.append((node, scale * gamma, bias * gamma + beta, affine_out))
    if not found:
        raise ValueError("the model has no instance norms to specialise")
    return found


def fold_style(model: onnx.ModelProto, vec: Sequence[float] | np.ndarray) -> onnx.ModelProto:
    """The graph for one fixed style vector: each norm's style affine folded into its scale and bias."""
    out = _rewritable(model)
    g = out.graph
    for i, (node, gamma, beta, affine_out) in enumerate(_norm_affine(out, vec)):
        s, b = f"restyle_fold_scale_{i}", f"restyle_fold_bias_{i}"
        g.initializer.extend(
            [numpy_helper.from_array(gamma.astype(np.float32), s), numpy_helper.from_array(beta.astype(np.float32), b)]
        )
        node.input[1], node.input[2] = s, b
        node.output[0] = affine_out  # readers of the Add now read the norm; Mul/Add/MatMuls become dead
    prune_graph(g)
    onnx.checker.check_model(out)
    return out


def freeze_norms(
    model: onnx.ModelProto, vec: Sequence[float] | np.ndarray, stats: Mapping[str, np.ndarray]
) -> onnx.ModelProto:
    """The graph for one style and fixed instance-norm statistics, every norm folded into its convolution.

    ``stats``: ``restyle_in_mean_i`` / ``restyle_in_rstd_i`` arrays of shape
    (1, C, 1, 1), as ``Stylizer.thumbnail_stats`` returns them.
    """
    names = stat_names(model)
    missing = [n for n in names if n not in stats]
    if missing:
        raise ValueError(f"statistics missing: {', '.join(missing[:3])}")
    out = _rewritable(model)
    g = out.graph
    inits = {i.name: i for i in g.initializer}
    producers, consumers = graph_producers(g), graph_consumers(g)
    for i, (node, gamma, beta, affine_out) in enumerate(_norm_affine(out, vec)):
        mean = np.asarray(stats[f"restyle_in_mean_{i}"], np.float64).reshape(-1)
        rstd = np.asarray(stats[f"restyle_in_rstd_{i}"], np.float64).reshape(-1)
        a = gamma * rstd  # y = a * x + c per channel
        c = beta - mean * a
        conv = producers.get(node.input[0])
        if conv is not None and conv.op_type == "Conv" and len(consumers.get(conv.output[0], [])) == 1:
            w_name, b_name = conv.input[1], conv.input[2] if len(conv.input) > 2 else ""
            w = numpy_helper.to_array(inits[w_name]).astype(np.float64)
            b = numpy_helper.to_array(inits[b_name]).astype(np.float64) if b_name else np.zeros(w.shape[0])
            new_w, new_b = f"restyle_frozen_w_{i}", f"restyle_frozen_b_{i}"
            g.initializer.extend(
                [
                    numpy_helper.from_array((w * a[:, None, None, None]).astype(np.float32), new_w),
                    numpy_helper.from_array((b * a + c).astype(np.float32), new_b),
                ]
            )
            x_in = conv.input[0]
            del conv.input[:]
            conv.input.extend([x_in, new_w, new_b])
            conv.output[0] = affine_out
            node.output[0] = f"restyle_frozen_dead_{i}"
        else:  # not after a convolution: a per-channel affine
            s, b = f"restyle_frozen_a_{i}", f"restyle_frozen_c_{i}"
            g.initializer.extend(
                [
                    numpy_helper.from_array(a.astype(np.float32).reshape(1, -1, 1, 1), s),
                    numpy_helper.from_array(c.astype(np.float32).reshape(1, -1, 1, 1), b),
                ]
            )
            mul = helper.make_node("Mul", [node.input[0], s], [f"{s}_out"])
            add = helper.make_node("Add", [f"{s}_out", b], [affine_out])
            position = list(g.node).index(node)
            g.node.insert(position, add)
            g.node.insert(position, mul)
            node.output[0] = f"restyle_frozen_dead_{i}"
    prune_graph(g)
    onnx.checker.check_model(out)
    return out
