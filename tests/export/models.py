"""Small seeded models exported once per test session (shared by export and runtime tests)."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

import torch

from restyle.models.serialization import save_model
from restyle.models.transformer import build_network

_ROOT = Path(tempfile.mkdtemp(prefix="restyle-test-models-"))
EXPORT_OUTPUT: dict[Path, str] = {}  # what the CLI printed, per exported file
SUMMARY = {"epochs": 2, "style_image": "stripes.png", "content_weight": 1.0, "final_loss": 3.25}


@functools.cache
def checkpoint(arch: str = "fast", styles: tuple[str, ...] = ("stripes", "dots")) -> Path:
    torch.manual_seed(1234)
    net = build_network(arch, len(styles))
    if len(styles) > 1:  # make the styles really differ, so blending is observable
        with torch.no_grad():
            for name, p in net.named_parameters():
                # Shift only beta: a random gain makes an untrained network chaotic enough that
                # float32 rounding differences between backends grow past the parity bound.
                if name.endswith("norm.bias"):
                    p[1:] += 0.3 * torch.randn_like(p[1:])
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
