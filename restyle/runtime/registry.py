"""Where models come from: bundled in the package, plus a user directory.

Bundled models live in ``restyle/styles/NAME.onnx`` (with an optional model
card ``NAME.md``); a user directory (``--models DIR`` or ``$RESTYLE_MODELS``,
which the caller reads through ``RuntimeSettings``; the registry reads no
environment) adds more and may shadow a bundled name on purpose. Names are validated
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
from typing import TypeVar

from restyle.errors import BrokenModel, InputNotFound, UnknownStyle, UserError
from restyle.runtime.model_info import ModelInfo, read_model_info
from restyle.runtime.stylizer import Stylizer

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "styles"
# The default style when none is named; None means the first bundled model (by name).
DEFAULT_STYLE: str | None = "starry_night"
T = TypeVar("T")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def valid_name(name: str) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def _checked(name: str, table: dict[str, T]) -> T:
    """``table[name]``, validating the name before it is used; UnknownStyle (HTTP 404) otherwise."""
    if not valid_name(name):
        raise UnknownStyle(f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
    if name not in table:
        known = ", ".join(sorted(table)) or "none installed"
        raise UnknownStyle(f"unknown style {name!r}; available: {known}")
    return table[name]


def _broken(path: Path, exc: UserError) -> UserError:
    """A registered model file that cannot be used, named by its model name (API clients never see paths)."""
    if isinstance(exc, BrokenModel | InputNotFound):
        return exc
    reason = str(exc).rsplit(str(path), 1)[-1].strip(" :").removeprefix("is ") or type(exc).__name__
    return BrokenModel(f"model {path.stem!r} cannot be used, its file is damaged: {reason}")


class Registry:
    """Bundled plus user models, and a cache of one ``Stylizer`` per (model, provider, threads)."""

    def __init__(
        self,
        user_dir: str | os.PathLike | None = None,
        bundled_dir: str | os.PathLike | None = None,
        *,
        bundled: bool = True,
        cache_dir: str | os.PathLike | None = None,
    ):
        """``user_dir``: extra models (None: none); ``bundled=False`` serves only those (tests, private servers).

        ``cache_dir`` is handed to every ``Stylizer`` (TensorRT engine cache).
        """
        self.bundled_dir = None if not bundled else Path(bundled_dir) if bundled_dir is not None else BUNDLED_DIR
        self.user_dir = Path(user_dir) if user_dir else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.user_dir is not None and not self.user_dir.is_dir():
            raise UserError(f"models directory {self.user_dir} does not exist")
        self._lock = threading.Lock()
        self._cache: dict[tuple[Path, str, int | None], tuple[tuple[int, int], Stylizer]] = {}
        self._building: dict[tuple[Path, str, int | None], threading.Lock] = {}
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
        """Model names (file stems)."""
        return sorted(self._scan())

    def _style_table(self) -> dict[str, tuple[str, str | None]]:
        """style name -> (model name, style inside it or None for a single-style model).

        Every model is reachable by its file name; each style of a multi-style
        (conditional instance norm) model is also reachable by its own name,
        unless a model file of that name shadows it. So ``--style udnie`` works
        whether udnie ships as ``udnie.onnx`` or inside one six-style model.
        """
        found = self._scan()
        table: dict[str, tuple[str, str | None]] = {name: (name, None) for name in found}
        for name, (path, source) in sorted(found.items()):
            try:
                info = self._read_info(path, name, source)
            except UserError:
                continue
            if len(info.style_names) > 1:
                for style in info.style_names:
                    if valid_name(style) and style not in table:
                        table[style] = (name, style)
        return table

    def style_names(self) -> list[str]:
        """Every style a user can name: single-style models plus the styles inside multi-style models."""
        found = self._scan()
        multi = set()
        for name, (path, source) in found.items():
            try:
                if len(self._read_info(path, name, source).style_names) > 1:
                    multi.add(name)
            except UserError:
                multi.add(name)  # unreadable: not offered as a style
        return sorted(k for k, (model, style) in self._style_table().items() if style is not None or model not in multi)

    def lookup(self, name: str) -> tuple[str, str | None]:
        """A style or model name -> (model name, style inside it, None meaning the model's own/first)."""
        return _checked(name, self._style_table())

    def bundled_names(self) -> list[str]:
        return sorted(n for n, (_, source) in self._scan().items() if source == "bundled")

    def default_name(self) -> str:
        """``DEFAULT_STYLE`` when installed (as a model or a style inside one), else the first bundled style.

        Always a name from :meth:`style_names` when there is one: a
        multi-style model stands for its first style.
        """
        table = self._style_table()
        if DEFAULT_STYLE in table:
            return DEFAULT_STYLE
        for candidates in (self.bundled_names(), self.names()):
            if candidates:
                model = candidates[0]
                inner = [k for k, (m, style) in table.items() if m == model and style is not None]
                first = self.info(model).style_names[0] if inner else None
                return first if first in inner else model
        raise UnknownStyle("no style models are installed; pass --style path/to/model.onnx or --models DIR")

    def _path(self, name: str) -> tuple[Path, str]:
        return _checked(name, self._scan())

    def info(self, name: str) -> ModelInfo:
        """The model called ``name``, or the model holding the style called ``name``."""
        if valid_name(name) and name not in self._scan():
            name = self.lookup(name)[0]
        path, source = self._path(name)
        return self._read_info(path, name, source)

    def _read_info(self, path: Path, name: str, source: str) -> ModelInfo:
        mtime = path.stat().st_mtime
        with self._lock:
            cached = self._info.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            info = read_model_info(path, name=name, source=source)
        except UserError as exc:
            raise _broken(path, exc) from None
        with self._lock:
            self._info[path] = (mtime, info)
        return info

    def infos(self) -> list[ModelInfo]:
        """Every readable model; an unreadable file is left out of the listing (naming it gives ``BrokenModel``)."""
        out = []
        for name, (path, source) in sorted(self._scan().items()):
            try:
                out.append(self._read_info(path, name, source))
            except UserError:
                continue
        return out

    def get(self, name: str, provider: str = "auto", threads: int | None = None) -> Stylizer:
        """The shared Stylizer for a registered model or style *name* (never a path).

        A damaged model file becomes :class:`BrokenModel` naming the style, not
        the file: the message reaches API clients, who know styles, not paths.
        """
        path, _ = self._path(self.lookup(name)[0])
        try:
            return self._stylizer(path, provider, threads)
        except InputNotFound:
            raise UnknownStyle(f"style {name!r} was removed; see the list of styles") from None
        except UserError as exc:
            raise _broken(path, exc) from None

    def resolve_style(
        self, spec: str | None, provider: str = "auto", threads: int | None = None
    ) -> tuple[Stylizer, str | None]:
        """Like :meth:`resolve`, plus which style of the model the name selects (None: the model's first)."""
        if spec is None:
            spec = self.default_name()
        stylizer = self.resolve(spec, provider, threads)
        if spec.lower().endswith(".onnx") or os.sep in spec or (os.altsep and os.altsep in spec):
            return stylizer, None
        return stylizer, self.lookup(spec)[1]

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
        """One shared session per (file version, provider, threads).

        A model file replaced on disk (new mtime or size) gets a new session,
        as its metadata does. Sessions are built outside the registry-wide
        lock (building one takes ~0.1-2 s), under a lock per key, so a slow
        load of one model never blocks requests for the others.
        """
        try:
            st = path.stat()
        except OSError:
            raise InputNotFound(f"no such model file: {path}") from None
        key = (path, provider, threads)
        version = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None and cached[0] == version:
                    return cached[1]
            stylizer = Stylizer(path, provider=provider, threads=threads, cache_dir=self.cache_dir)
            with self._lock:
                self._cache[key] = (version, stylizer)
            return stylizer
