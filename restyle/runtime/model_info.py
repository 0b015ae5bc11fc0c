"""A model as the catalogue knows it: the file's contract (``ModelMetadata``) plus where the file lives.

``ModelMetadata`` (``restyle.contract``) is what travels inside the ONNX
file; ``ModelInfo`` adds only what the file cannot know about itself: the
name it is registered under, its size, its content hash, whether it is
bundled or a user's, and its model card. The contract's fields are read
through, never copied, so the two cannot drift apart.

The content hash is the model's *version* (``/v1/styles``, the API's
``X-Model-Version`` header, the Open Inference Protocol's ``versions``): a
name says which style, the hash says which file, so a style deleted and
trained again under its name, or a bundled model updated by an upgrade, is
told apart. It is computed when the file's metadata is read, which the
registry does once per file version, never per request.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restyle.contract import ModelMetadata, read_metadata

VERSION_DIGITS = 12  # 48 bits: two different files of one name colliding is not a concern


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """What ``restyle styles``, the API and the runtime show and use about a model."""

    name: str
    path: Path
    size_bytes: int
    metadata: ModelMetadata = field(repr=False)
    source: str = "file"  # "bundled", "user" or "file" (a path given on the command line)
    card: Path | None = None  # NAME.md model card beside the model, if any
    sha256: str = ""  # of the file's bytes, hex

    @property
    def version(self) -> str:
        """The file's version: the first ``VERSION_DIGITS`` hex digits of its SHA-256."""
        return self.sha256[:VERSION_DIGITS]

    @property
    def arch(self) -> str:
        return self.metadata.arch

    @property
    def style_names(self) -> list[str]:
        return self.metadata.style_names

    @property
    def stride(self) -> int:
        return self.metadata.stride

    @property
    def precision(self) -> str:
        return self.metadata.precision

    @property
    def summary(self) -> dict[str, Any]:
        return self.metadata.summary


def read_model_info(path: str | os.PathLike, name: str | None = None, source: str = "file") -> ModelInfo:
    """Read a model file's contract and hash once; ``Registry`` caches the result per file version."""
    path = Path(path)
    meta = read_metadata(path)  # a clear UserError for a missing or unreadable file, before the hash reads it
    card = path.with_suffix(".md")
    return ModelInfo(
        name=name or path.stem,
        path=path,
        size_bytes=path.stat().st_size,
        metadata=meta,
        source=source,
        card=card if card.is_file() else None,
        sha256=file_sha256(path),
    )
