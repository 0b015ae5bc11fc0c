"""Where ONNX Runtime's optimised graph of a model is cached, and under which key.

A saved level-ALL graph is only valid for the ORT version, the execution
provider and the CPU that produced it (it holds layout transforms chosen for
this machine's vector units), so all three are in the file name with a hash of
the model's bytes; a changed model, an upgraded ORT or a copied cache folder
never loads a graph built for something else.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

import onnxruntime as ort

from restyle.runtime.providers import DEFAULT_CACHE_DIR


@functools.cache
def _cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        # the model name and the instruction-set flags of the first core
        wanted = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("model name", "flags"))]
        if wanted:
            return " ".join(wanted[:2])
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_key(model: bytes, provider: str) -> str:
    digest = hashlib.sha256()
    digest.update(model)
    digest.update(f"\0{ort.__version__}\0{provider}\0{_cpu_name()}".encode())
    return digest.hexdigest()[:32]


def cached_model_path(model: bytes, provider: str, cache_dir: Path | None) -> Path | None:
    """The cache file for ``model`` under ``provider`` (it may not exist yet); None when the folder is unusable."""
    folder = (cache_dir or DEFAULT_CACHE_DIR) / "ort-optimized"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return None
    return folder / f"{cache_key(model, provider)}.onnx"
