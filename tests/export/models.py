"""Small seeded models exported once per test session (shared by export and runtime tests)."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

from restyle.export.onnx_export import untrained_network
from restyle.models.serialization import save_model

_ROOT = Path(tempfile.mkdtemp(prefix="restyle-test-models-"))
EXPORT_OUTPUT: dict[Path, str] = {}  # what the CLI printed, per exported file
SUMMARY = {"epochs": 2, "style_image": "stripes.png", "content_weight": 1.0, "final_loss": 3.25}


@functools.cache
def checkpoint(arch: str = "fast", styles: tuple[str, ...] = ("stripes", "dots")) -> Path:
    net = untrained_network(arch, len(styles), seed=1234)  # the styles really differ, so blending is observable
    return save_model(net, _ROOT / f"{arch}-{len(styles)}" / "final.pt", list(styles), SUMMARY)


@functools.cache
def exported(arch: str = "fast", fp16: bool = False, exporter: str = "torchscript") -> Path:
    """Exported with the fast torchscript exporter; the dynamo default is covered by a slow test."""
    from restyle.cli import main

    out = _ROOT / f"{arch}-{'fp16' if fp16 else 'fp32'}-{exporter}.onnx"
    argv = ["export", str(checkpoint(arch)), "-o", str(out), "--exporter", exporter] + (["--fp16"] if fp16 else [])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    assert code == 0, buf.getvalue()
    EXPORT_OUTPUT[out] = buf.getvalue()
    return out
