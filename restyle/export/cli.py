"""``restyle export RUN/final.pt -o NAME.onnx [--opset N] [--fp16]``."""

from __future__ import annotations

import argparse
import time

from restyle.export.onnx_export import DEFAULT_OPSET, EXPORTERS, export_onnx


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model (final.pt) to ONNX",
        description="Export RUN/final.pt to ONNX with dynamic batch/height/width, metadata and a parity check.",
    )
    p.add_argument("checkpoint", help="RUN/final.pt written by 'restyle train'")
    p.add_argument("-o", "--output", required=True, help="NAME.onnx to write (atomically, only if checks pass)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (instance norm stays fp32)")
    p.add_argument("--exporter", choices=EXPORTERS, default="dynamo", help="torch exporter (default dynamo)")
    p.add_argument("--photo", help="photo for the parity check (default: the bundled sample)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    result = export_onnx(
        args.checkpoint, args.output, opset=args.opset, fp16=args.fp16, exporter=args.exporter, photo=args.photo
    )
    meta = result.metadata
    for line in result.parity.lines():
        print(line)
    size_mb = result.path.stat().st_size / 1e6
    print(
        f"wrote {result.path} ({size_mb:.1f} MB, {meta.arch}, {meta.precision}, opset {meta.opset}, "
        f"styles: {', '.join(meta.style_names)}) in {time.perf_counter() - start:.1f} s"
    )
    return 0
