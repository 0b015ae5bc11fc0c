"""Reading a model's description from its ONNX file (no session needed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from restyle.errors import InputNotFound, UserError
from restyle.export.metadata import ModelMetadata


@dataclass(frozen=True)
class ModelInfo:
    """What ``restyle styles``, the API and the runtime show and use about a model."""

    name: str
    arch: str
    style_names: list[str]
    size_bytes: int
    summary: dict[str, Any]
    path: Path
    stride: int = 1
    precision: str = "fp32"
    source: str = "file"  # "bundled", "user" or "file"
    card: Path | None = None  # NAME.md model card beside the model, if any
    metadata: ModelMetadata | None = field(default=None, repr=False, compare=False)


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The restyle metadata of an ONNX file; a clear UserError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"no such model file: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    return ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props}, source=str(path))


def read_model_info(path: str | os.PathLike, name: str | None = None, source: str = "file") -> ModelInfo:
    path = Path(path)
    meta = read_metadata(path)
    card = path.with_suffix(".md")
    return ModelInfo(
        name=name or path.stem,
        arch=meta.arch,
        style_names=meta.style_names,
        size_bytes=path.stat().st_size,
        summary=meta.summary,
        path=path,
        stride=meta.stride,
        precision=meta.precision,
        source=source,
        card=card if card.is_file() else None,
        metadata=meta,
    )
