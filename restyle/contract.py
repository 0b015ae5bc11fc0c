"""The model contract, shared by the exporter and the runtime: metadata, tensor names, the style vector.

Everything the runtime needs to use a model (architecture, stride, style
names, precision, the input/output contract) travels inside the ``.onnx``
file as ``metadata_props``, so a model is one self-describing file: the
registry can list it and the runtime can drive it without the ``final.pt``
it came from. Values are strings (ONNX's rule); structured ones are JSON.

The style vector (``style_vector``) is part of the contract too: it is the
``style`` input every exported model takes, and the one place where a
user's choice (an index, a name, weights or ``{name: weight}``) becomes
that input, for every front end alike.

This module must not import torch: the runtime reads the same keys and is
meant to start without the training stack.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restyle.errors import InputNotFound, UserError

FORMAT = "restyle-onnx"
FORMAT_VERSION = 1
PREFIX = "restyle."

INPUT_IMAGE = "image"
INPUT_STYLE = "style"
OUTPUT_IMAGE = "stylized"

# Keep a single summary small: it is shown by ``restyle styles`` and sent by the API.
MAX_SUMMARY_BYTES = 16_384


def contract(num_styles: int, stride: int) -> dict[str, Any]:
    """The input/output contract, stored verbatim so other tools can read it without our code."""
    return {
        "inputs": {
            INPUT_IMAGE: {
                "shape": ["N", 3, "H", "W"],
                "dtype": "float32",
                "range": [0.0, 1.0],
                "layout": "RGB, NCHW",
                "note": f"H and W should be multiples of {stride} (reflect-pad, then crop the output back)",
            },
            INPUT_STYLE: {
                "shape": ["N", num_styles],
                "dtype": "float32",
                "note": "per-sample style weights: one-hot selects a style, other rows blend the "
                "conditional instance-norm parameters; use [[1.0]] for a single-style model",
            },
        },
        "outputs": {
            OUTPUT_IMAGE: {"shape": ["N", 3, "H", "W"], "dtype": "float32", "range": [0.0, 1.0], "layout": "RGB, NCHW"}
        },
    }


def summarize(metadata: dict[str, Any]) -> dict[str, Any]:
    """Keep the JSON-representable part of the training metadata, dropping the largest entries first if too big."""
    clean: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        clean[str(key)] = value
    while clean and len(json.dumps(clean)) > MAX_SUMMARY_BYTES:
        biggest = max(clean, key=lambda k: len(json.dumps(clean[k])))
        del clean[biggest]
    return clean


@dataclass(frozen=True)
class ModelMetadata:
    """What the runtime and the registry know about an exported model."""

    arch: str
    stride: int
    style_names: list[str]
    precision: str = "fp32"
    summary: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    contract: dict[str, Any] = field(default_factory=dict)
    opset: int = 0
    exporter: str = ""

    @property
    def num_styles(self) -> int:
        return len(self.style_names)

    def to_props(self) -> dict[str, str]:
        """As ONNX ``metadata_props`` (string to string)."""
        props = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "arch": self.arch,
            "stride": str(self.stride),
            "num_styles": str(self.num_styles),
            "style_names": json.dumps(self.style_names),
            "precision": self.precision,
            "summary": json.dumps(self.summary, sort_keys=True),
            "parity": json.dumps(self.parity, sort_keys=True),
            "contract": json.dumps(self.contract or contract(self.num_styles, self.stride), sort_keys=True),
            "opset": str(self.opset),
            "exporter": self.exporter,
        }
        return {PREFIX + k: v for k, v in props.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMetadata:
        """Parse ``metadata_props``; a file without them is not one of ours and is refused clearly."""
        get = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if get.get("format") != FORMAT:
            raise UserError(
                f"{source} is not a restyle ONNX model (no '{PREFIX}format' metadata); export one with 'restyle export'"
            )
        try:
            version = int(get.get("format_version", "0"))
            if version > FORMAT_VERSION:
                raise UserError(f"{source} was exported by a newer restyle (format {version})")
            names = json.loads(get["style_names"])
            return cls(
                arch=get["arch"],
                stride=int(get["stride"]),
                style_names=[str(n) for n in names],
                precision=get.get("precision", "fp32"),
                summary=json.loads(get.get("summary", "{}")),
                parity=json.loads(get.get("parity", "{}")),
                contract=json.loads(get.get("contract", "{}")),
                opset=int(get.get("opset", "0")),
                exporter=get.get("exporter", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise UserError(f"{source} has damaged restyle metadata ({exc})") from None


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The restyle metadata of an ONNX file, without loading its weights; a clear UserError for anything else."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"no such model file: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    return ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props}, source=str(path))


StyleWeights = int | str | Sequence[float] | Mapping[str, float] | np.ndarray | None


def style_vector(weights: StyleWeights, style_names: Sequence[str]) -> np.ndarray:
    """Resolve any accepted form to the float32 ``(S,)`` ``style`` input, summing to 1.

    ``None`` is the first style; an int an index; a str a style name; a
    sequence or array one weight per style; a mapping ``{name: weight}``.
    Lists and arrays of the same numbers give the same vector.
    """
    s = len(style_names)
    if weights is None:
        weights = 0
    if isinstance(weights, str):
        if weights not in style_names:
            raise UserError(f"style {weights!r} is not in this model; it has: {', '.join(style_names)}")
        weights = style_names.index(weights)
    if isinstance(weights, (int, np.integer)) and not isinstance(weights, bool):
        if not 0 <= weights < s:
            raise UserError(f"style index {weights} out of range 0..{s - 1}")
        vec = np.zeros(s, np.float32)
        vec[int(weights)] = 1.0
        return vec
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in style_names]
        if unknown:
            raise UserError(
                f"unknown style(s) {', '.join(map(str, unknown))}; this model has: {', '.join(style_names)}"
            )
        weights = [float(weights.get(name, 0.0)) for name in style_names]
    try:
        vec = np.asarray(weights, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise UserError(f"style weights must be numbers, not {weights!r}") from None
    if vec.shape != (s,):
        raise UserError(f"expected {s} style weight(s) for this model, got {vec.size}")
    if not all(math.isfinite(v) and v >= 0 for v in vec.tolist()) or vec.sum() <= 0:
        raise UserError("style weights must be non-negative with a positive sum")
    return vec / vec.sum()
