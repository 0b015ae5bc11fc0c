"""Where ONNX Runtime's optimised graph of a model is cached, and under which key.

A saved level-ALL graph is only valid for the ORT version, the execution
provider and the CPU that produced it (it holds layout transforms chosen for
this machine's vector units), so all three are in the file name with a hash of
the model's bytes; a changed model, an upgraded ORT or a copied cache folder
never loads a graph built for something else.

Writes are atomic and may fail: ONNX Runtime writes the graph to a scratch
file beside the cache file (:func:`scratch_file`), which is fsynced and
renamed onto it only once the session that wrote it was built
(:func:`publish`). A cache that cannot be written (read-only or full disk, a
quota, a file-size limit) costs the optimisation at the next start, nothing
else; a reader never sees a partial file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import tempfile
from pathlib import Path

import onnxruntime as ort

from restyle.atomic import _fsync_dir, _umask
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


def scratch_file(cached: Path) -> Path | None:
    """A new, uniquely named scratch file beside ``cached`` for ORT to write into; None when none can be made."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{cached.name}.", suffix=".tmp", dir=cached.parent)
    except OSError:
        return None
    os.close(fd)
    return Path(name)


def publish(scratch: Path, cached: Path) -> bool:
    """Move a completely written ``scratch`` onto ``cached`` (fsync, then rename); False, and no file left, if not.

    An empty scratch file (the session that should have written it did not)
    is discarded, never published.
    """
    try:
        with open(scratch, "rb+") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise OSError("ONNX Runtime wrote nothing")
            os.fsync(fh.fileno())
        os.chmod(scratch, 0o666 & ~_umask())  # mkstemp made it 0600; give it what a plain open() would
        os.replace(scratch, cached)
    except OSError:
        discard(scratch)
        return False
    _fsync_dir(cached.parent)
    return True


def discard(path: Path) -> None:
    """Remove a scratch or damaged cache file, if it can be removed at all."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
