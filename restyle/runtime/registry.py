"""Where models come from: bundled in the package, plus a user directory.

Bundled models live in ``restyle/styles/NAME.onnx`` (with an optional model
card ``NAME.md``); a user directory (``--models DIR`` or ``$RESTYLE_MODELS``)
adds more and may shadow a bundled name on purpose. Names are validated
against a strict pattern before any file-system access, so a style name
coming from an HTTP request can never reach a path (``../x``, ``/etc``,
``a/b``); explicit ``.onnx`` paths are accepted only through ``resolve``,
which the CLI uses and the API must not.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from restyle.errors import InputNotFound, UnknownStyle, UserError
from restyle.runtime.model_info import ModelInfo, read_model_info
from restyle.runtime.stylizer import Stylizer

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "styles"
ENV_VAR = "RESTYLE_MODELS"
# The default style when none is named; None means the first bundled model (by name).
DEFAULT_STYLE: str | None = "starry_night"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def valid_name(name: str) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


class Registry:
    """Bundled plus user models, and a cache of one ``Stylizer`` per (model, provider, threads)."""

    def __init__(self, user_dir: str | os.PathLike | None = None, bundled_dir: str | os.PathLike | None = None):
        self.bundled_dir = Path(bundled_dir) if bundled_dir is not None else BUNDLED_DIR
        env = os.environ.get(ENV_VAR)
        chosen = user_dir if user_dir is not None else env
        self.user_dir = Path(chosen) if chosen else None
        if self.user_dir is not None and not self.user_dir.is_dir():
            raise UserError(f"models directory {self.user_dir} does not exist")
        self._lock = threading.Lock()
        self._cache: dict[tuple[Path, str, int | None], Stylizer] = {}
        self._info: dict[Path, tuple[float, ModelInfo]] = {}

    def _scan(self) -> dict[str, tuple[Path, str]]:
        """name -> (path, source); user models shadow bundled ones of the same name."""
        found: dict[str, tuple[Path, str]] = {}
        for directory, source in ((self.bundled_dir, "bundled"), (self.user_dir, "user")):
            if directory is None or not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.onnx")):
                if valid_name(path.stem) and path.is_file():
                    found[path.stem] = (path, source)
        return found

    def names(self) -> list[str]:
        return sorted(self._scan())

    def bundled_names(self) -> list[str]:
        return sorted(n for n, (_, source) in self._scan().items() if source == "bundled")

    def default_name(self) -> str:
        """``DEFAULT_STYLE`` when installed, else the first bundled model, else the first user model."""
        names = self.names()
        if DEFAULT_STYLE in names:
            return DEFAULT_STYLE
        for candidates in (self.bundled_names(), names):
            if candidates:
                return candidates[0]
        raise UnknownStyle("no style models are installed; pass --style path/to/model.onnx or --models DIR")

    def _path(self, name: str) -> tuple[Path, str]:
        if not valid_name(name):
            raise UnknownStyle(f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
        found = self._scan()
        if name not in found:
            known = ", ".join(sorted(found)) or "none installed"
            raise UnknownStyle(f"unknown style {name!r}; available: {known}")
        return found[name]

    def info(self, name: str) -> ModelInfo:
        path, source = self._path(name)
        return self._read_info(path, name, source)

    def _read_info(self, path: Path, name: str, source: str) -> ModelInfo:
        mtime = path.stat().st_mtime
        with self._lock:
            cached = self._info.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        info = read_model_info(path, name=name, source=source)
        with self._lock:
            self._info[path] = (mtime, info)
        return info

    def infos(self) -> list[ModelInfo]:
        """Every model; unreadable files are reported by ``broken`` instead of failing the listing."""
        out = []
        for name, (path, source) in sorted(self._scan().items()):
            try:
                out.append(self._read_info(path, name, source))
            except UserError:
                continue
        return out

    def get(self, name: str, provider: str = "auto", threads: int | None = None) -> Stylizer:
        """The shared Stylizer for a registered style *name* (never a path)."""
        path, _ = self._path(name)
        return self._stylizer(path, provider, threads)

    def resolve(self, spec: str | None, provider: str = "auto", threads: int | None = None) -> Stylizer:
        """A name, or (CLI only) a path to an ``.onnx`` file; None means the default style."""
        if spec is None:
            return self.get(self.default_name(), provider, threads)
        if spec.lower().endswith(".onnx") or os.sep in spec or (os.altsep and os.altsep in spec):
            path = Path(spec).expanduser()
            if not path.is_file():
                raise InputNotFound(f"no such model file: {spec}")
            return self._stylizer(path.resolve(), provider, threads)
        return self.get(spec, provider, threads)

    def _stylizer(self, path: Path, provider: str, threads: int | None) -> Stylizer:
        key = (path, provider, threads)
        with self._lock:
            stylizer = self._cache.get(key)
            if stylizer is None:
                stylizer = Stylizer(path, provider=provider, threads=threads)
                self._cache[key] = stylizer
            return stylizer
