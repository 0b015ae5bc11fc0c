"""``final.pt`` -> ``NAME.onnx``: dynamic batch/height/width, metadata, checker, parity.

Design choices, and why:

* **Inputs** ``image`` (N,3,H,W) float32 RGB [0,1] and ``style`` (N,S) float32
  weights, **output** ``stylized``. Every model takes ``style``, single-style
  ones too (``[[1.0]]``), so the runtime has exactly one code path and
  conditional multi-style models can blend styles at inference time.
* **fp16** models keep the float32 interface (casts happen inside the graph)
  and keep instance normalisation in float32: ``StyleNorm`` computes its
  statistics on ``x.float()``, so we only have to keep its (tiny) affine
  parameters in float32 when halving the rest of the network.
* **Exporter**: ``dynamo`` (torch.export + onnxscript, the supported path in
  torch 2.x) gives a clean graph of ~180 nodes with symbolic H/W; it takes
  ~30 s on two cores. ``torchscript`` (the legacy tracer) produces an
  equivalent graph (ORT folds its extra Constant/Cast nodes) in ~3 s and is
  kept as a fallback and for quick tests. Both emit ``InstanceNormalization``
  nodes, which the runtime's tiling relies on (see
  ``restyle.runtime.thumbnail_norm``).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from restyle import __version__
from restyle.atomic import atomic_path
from restyle.contract import (
    INPUT_IMAGE,
    INPUT_STYLE,
    OUTPUT_IMAGE,
    ModelMetadata,
    contract,
    summarize,
)
from restyle.errors import UserError
from restyle.export.parity import ParityReport, check_parity
from restyle.models.layers import StyleNorm
from restyle.models.serialization import load_model
from restyle.models.transformer import StyleNet

EXPORTERS = ("dynamo", "torchscript")
DEFAULT_OPSET = 18


class ExportWrapper(nn.Module):
    """Fixes the ONNX signature to ``(image, style) -> stylized`` with a float32 interface."""

    def __init__(self, net: StyleNet, fp16: bool = False):
        super().__init__()
        self.net = net
        self.fp16 = fp16

    def forward(self, image: Tensor, style: Tensor) -> Tensor:
        if self.fp16:
            return self.net(image.half(), style).float()
        return self.net(image, style)


def half_network(net: StyleNet) -> StyleNet:
    """A copy in float16 except the instance-norm affine parameters (blended in fp32, as the statistics)."""
    half = copy.deepcopy(net).half()
    for module in half.modules():
        if isinstance(module, StyleNorm):
            module.float()
    return half


@dataclass(frozen=True)
class ExportResult:
    path: Path
    metadata: ModelMetadata
    parity: ParityReport


def _to_proto(wrapper: ExportWrapper, num_styles: int, stride: int, opset: int, exporter: str) -> onnx.ModelProto:
    # Batch 2 and a size well above the minimum so that neither is specialised to a constant.
    side = 8 * stride
    example = (torch.rand(2, 3, side, side), torch.full((2, num_styles), 1.0 / num_styles))
    names = {"input_names": [INPUT_IMAGE, INPUT_STYLE], "output_names": [OUTPUT_IMAGE]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            from torch.export import Dim

            n, h, w = Dim("N", min=1), Dim("H", min=2 * stride), Dim("W", min=2 * stride)
            program = torch.onnx.export(
                wrapper,
                example,
                dynamo=True,
                opset_version=opset,
                dynamic_shapes={"image": {0: n, 2: h, 3: w}, "style": {0: n}},
                verbose=False,
                **names,
            )
            return program.model_proto
        buf = io.BytesIO()
        torch.onnx.export(
            wrapper,
            example,
            buf,
            dynamo=False,
            opset_version=opset,
            dynamic_axes={
                INPUT_IMAGE: {0: "N", 2: "H", 3: "W"},
                INPUT_STYLE: {0: "N"},
                OUTPUT_IMAGE: {0: "N", 2: "H", 3: "W"},
            },
            **names,
        )
        return onnx.load_from_string(buf.getvalue())


def export_onnx(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    exporter: str = "dynamo",
    photo: str | os.PathLike | None = None,
) -> ExportResult:
    """Export, check and verify; the file appears at ``output`` only if every check passed."""
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {exporter!r}; choose one of: {', '.join(EXPORTERS)}")
    if not 13 <= opset <= 20:
        raise UserError(f"opset {opset} is not supported; use 13..20 (default {DEFAULT_OPSET})")
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise UserError(f"output must end in .onnx, not {output.name!r}")
    net, record = load_model(checkpoint)  # UserError for anything that is not a restyle checkpoint
    style_names = list(record["style_names"])
    export_net = half_network(net) if fp16 else net
    wrapper = ExportWrapper(export_net, fp16=fp16).eval()
    try:
        proto = _to_proto(wrapper, net.num_styles, net.stride, opset, exporter)
    except Exception as exc:  # exporter internals: report as one line, keep the cause for debugging
        raise UserError(f"ONNX export with the {exporter} exporter failed: {type(exc).__name__}: {exc}") from exc
    onnx.checker.check_model(proto, full_check=True)
    parity = check_parity(net, proto, fp16=fp16, photo=photo)
    meta = ModelMetadata(
        arch=net.arch,
        stride=net.stride,
        style_names=style_names,
        precision="fp16" if fp16 else "fp32",
        summary=summarize(record.get("metadata") or {}),
        parity=parity.as_dict(),
        contract=contract(net.num_styles, net.stride),
        opset=opset,
        exporter=exporter,
    )
    del proto.metadata_props[:]
    for key, value in meta.to_props().items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "restyle"
    proto.producer_version = __version__
    proto.doc_string = (
        f"restyle {net.arch} style transfer network ({', '.join(style_names)}); "
        "inputs image (N,3,H,W) RGB [0,1] and style (N,S) weights; output stylized (N,3,H,W) RGB [0,1]"
    )
    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(output) as tmp:
        onnx.save(proto, str(tmp))
    return ExportResult(output, meta, parity)


def untrained_network(arch: str, num_styles: int = 1, seed: int = 0) -> nn.Module:
    """A seeded, untrained style network whose styles really differ.

    Freshly built, every style of a multi-style network would render
    identically, and a test of style choice could not fail; so each style
    after the first gets its own random instance-norm offsets. Only the offsets
    (beta): a random gain makes an untrained network chaotic enough that
    float32 rounding differences between backends grow past the parity bound.
    """
    from restyle.models.transformer import build_network

    torch.manual_seed(seed)
    net = build_network(arch, num_styles)
    if num_styles > 1:
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith("norm.bias"):
                    p[1:] += 0.3 * torch.randn_like(p[1:])
    return net


def export_untrained(arch: str, output: str | os.PathLike, style_names: list[str] | None = None, seed: int = 0) -> Path:
    """A seeded, untrained network exported with the fast torchscript exporter.

    For speed measurements (speed does not depend on the weights) and tests:
    the one place benchmarks and test fixtures get a model without training.
    The checkpoint is written beside the ONNX file as ``NAME.final.pt``; the
    network is :func:`untrained_network`.
    """
    from restyle.models.serialization import save_model

    output = Path(output)
    names = style_names or [arch]
    net = untrained_network(arch, len(names), seed)
    ckpt = save_model(net, output.with_suffix(".final.pt"), names, {"note": "untrained, seeded"})
    return export_onnx(ckpt, output, exporter="torchscript").path
