"""A model as the catalogue knows it: the file's contract (``ModelMetadata``) plus where the file lives.

``ModelMetadata`` (``restyle.contract``) is what travels inside the ONNX
file; ``ModelInfo`` adds only what the file cannot know about itself: the
name it is registered under, its size, whether it is bundled or a user's,
and its model card. The contract's fields are read through, never copied,
so the two cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restyle.contract import ModelMetadata, read_metadata


@dataclass(frozen=True)
class ModelInfo:
    """What ``restyle styles``, the API and the runtime show and use about a model."""

    name: str
    path: Path
    size_bytes: int
    metadata: ModelMetadata = field(repr=False)
    source: str = "file"  # "bundled", "user" or "file" (a path given on the command line)
    card: Path | None = None  # NAME.md model card beside the model, if any

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
    """Read a model file's contract once; ``Registry`` caches the result per file version."""
    path = Path(path)
    meta = read_metadata(path)
    card = path.with_suffix(".md")
    return ModelInfo(
        name=name or path.stem,
        path=path,
        size_bytes=path.stat().st_size,
        metadata=meta,
        source=source,
        card=card if card.is_file() else None,
    )
