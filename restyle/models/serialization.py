"""The trained-model file (``final.pt``): weights plus everything needed to rebuild and describe them.

One format, written by training and read by export, the runtime's PyTorch
path, the benchmarks and the reference suite. Plain tensors and builtins
only, so ``torch.load(weights_only=True)`` reads it safely.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from restyle.atomic import atomic_path
from restyle.errors import InputNotFound, UserError
from restyle.models.transformer import StyleNet, build_network

FORMAT = "restyle-model"
FORMAT_VERSION = 1


def model_record(net: StyleNet, style_names: list[str], metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "arch": net.arch,
        "num_styles": net.num_styles,
        "style_names": list(style_names),
        "state_dict": {k: v.detach().cpu().float() for k, v in net.state_dict().items()},
        "metadata": metadata,
    }


def save_model(net: StyleNet, path: str | os.PathLike, style_names: list[str], metadata: dict[str, Any]) -> Path:
    """Write ``final.pt`` atomically."""
    if len(style_names) != net.num_styles:
        raise ValueError("one name per style")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(model_record(net, style_names, metadata), tmp)
    return path


def read_model_record(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"no such model file: {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise UserError(f"{path} is not a restyle model file (cannot be read as a PyTorch checkpoint)") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a restyle model file (no '{FORMAT}' header); pass RUN/final.pt from 'restyle train'"
        )
    if record.get("version", 0) > FORMAT_VERSION:
        raise UserError(f"{path} was written by a newer restyle (format {record['version']})")
    return record


def load_model(path: str | os.PathLike) -> tuple[StyleNet, dict[str, Any]]:
    """Rebuild the network in eval mode; returns ``(net, record without state_dict)``."""
    record = read_model_record(path)
    net = build_network(record["arch"], record["num_styles"])
    net.load_state_dict(record.pop("state_dict"))
    net.eval()
    return net, record
