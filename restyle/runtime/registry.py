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

import filecmp
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import TypeVar

from restyle.errors import BrokenModel, InputNotFound, UnknownStyle, UserError
from restyle.runtime.model_info import ModelInfo, read_model_info
from restyle.runtime.stylizer import Stylizer

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "styles"
# The default style when none is named; None means the first bundled model (by name).
DEFAULT_STYLE: str | None = "starry_night"
T = TypeVar("T")
RACY_NS = 2_000_000_000  # a folder changed this recently is always rescanned (see Registry._folder_state)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def valid_name(name: str) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def file_version(path: Path) -> tuple[int, int, int]:
    """What changes when a model file is replaced: (mtime in ns, size, inode). Raises ``OSError`` if it is gone."""
    st = path.stat()
    return st.st_mtime_ns, st.st_size, st.st_ino


class ModelExists(UserError):
    """Another model already has this name (HTTP 409)."""

    http_status = 409


def install_model(directory: Path, name: str, model: Path, card: Path | None = None) -> Path:
    """Put ``model`` into ``directory`` as ``NAME.onnx`` atomically, never over another model; then its card.

    Readers (every registry, in any process) see no model or the whole file
    (``restyle.atomic.atomic_copy_new``: a temporary copy, fsync, hard link).
    Installing the same file again is a no-op, so a retried job may repeat
    it; a different model of that name raises ``ModelExists``. The card goes
    last: a model without its card is complete, a card is never orphaned.
    """
    from restyle.atomic import atomic_copy_new, atomic_write_bytes

    if not valid_name(name):
        raise UserError(f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
    target = Path(directory) / f"{name}.onnx"
    if not atomic_copy_new(model, target) and not filecmp.cmp(model, target, shallow=False):
        raise ModelExists(f"a style named {name!r} already exists")
    if card is not None and card.is_file():
        atomic_write_bytes(target.with_suffix(".md"), card.read_bytes())
    return target


def remove_model(directory: Path, name: str) -> bool:
    """Delete ``NAME.onnx`` (and its card) from ``directory`` atomically; False if there was none.

    The model is renamed away first (one atomic step: registries stop
    listing it), then deleted; sessions already running on it finish.
    """
    if not valid_name(name):
        return False
    target = Path(directory) / f"{name}.onnx"
    doomed = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.deleted")
    try:
        os.rename(target, doomed)
    except FileNotFoundError:
        return False
    doomed.unlink(missing_ok=True)
    target.with_suffix(".md").unlink(missing_ok=True)
    return True


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
        missing_ok: bool = False,
    ):
        """``user_dir``: extra models (None: none); ``bundled=False`` serves only those (tests, private servers).

        ``cache_dir`` is handed to every ``Stylizer`` (TensorRT engine cache). ``missing_ok``: ``user_dir``
        may not exist yet (the server's default folder for trained styles, created by the first one).

        Every look-up checks the folders (one ``stat`` each) and globs them
        again when they changed, so a model installed or deleted while the
        process runs (``POST``/``DELETE /v1/styles``, by an API replica or a
        worker) is seen at once, with no restart; sessions and metadata of
        files that are gone are dropped.
        """
        self.bundled_dir = None if not bundled else Path(bundled_dir) if bundled_dir is not None else BUNDLED_DIR
        self.user_dir = Path(user_dir) if user_dir else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.user_dir is not None and not self.user_dir.is_dir() and not missing_ok:
            raise UserError(f"models directory {self.user_dir} does not exist")
        self._lock = threading.Lock()
        self._cache: dict[tuple[Path, str, int | None], tuple[tuple[int, int, int], Stylizer]] = {}
        self._building: dict[tuple[Path, str, int | None], threading.Lock] = {}
        self._info: dict[Path, tuple[tuple[int, int, int], ModelInfo]] = {}
        self._listing: tuple[tuple[tuple[int, int, int], ...], dict[str, tuple[Path, str]]] | None = None

    def _folder_state(self) -> tuple[tuple[int, int, int], ...] | None:
        """(mtime ns, inode, device) of each model folder; None when a rescan must not be skipped.

        Adding, removing or renaming a model changes its folder's mtime, so an
        unchanged state means an unchanged listing. A folder touched within the
        last ``RACY_NS`` is rescanned anyway: file-system timestamps are coarse
        (a few ms), and two changes inside one tick would leave the same mtime.
        """
        state = []
        now = time.time_ns()
        for directory in (self.bundled_dir, self.user_dir):
            if directory is None:
                state.append((0, 0, 0))
                continue
            try:
                st = directory.stat()
            except OSError:
                state.append((-1, 0, 0))
                continue
            if now - st.st_mtime_ns < RACY_NS:
                return None
            state.append((st.st_mtime_ns, st.st_ino, st.st_dev))
        return tuple(state)

    def _scan(self) -> dict[str, tuple[Path, str]]:
        """name -> (path, source); user models shadow bundled ones of the same name.

        Globbed again only when a folder changed (see ``_folder_state``): a
        request resolves its style through here two or three times.
        """
        state = self._folder_state()
        listing = self._listing
        if state is not None and listing is not None and listing[0] == state:
            return dict(listing[1])
        found: dict[str, tuple[Path, str]] = {}
        for directory, source in ((self.bundled_dir, "bundled"), (self.user_dir, "user")):
            if directory is None or not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.onnx")):
                if valid_name(path.stem) and path.is_file():
                    found[path.stem] = (path, source)
        self._forget_removed({path for path, _ in found.values()})
        self._listing = (state, found) if state is not None else None
        return dict(found)

    def _forget_removed(self, present: set[Path]) -> None:
        """Drop the sessions and metadata of registered model files that were deleted (explicit CLI paths stay)."""
        folders = {d for d in (self.bundled_dir, self.user_dir) if d is not None}
        with self._lock:
            for key in [k for k in self._cache if k[0].parent in folders and k[0] not in present]:
                del self._cache[key]
                self._building.pop(key, None)
            for path in [p for p in self._info if p.parent in folders and p not in present]:
                del self._info[path]

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

    def locate(self, model: str) -> tuple[Path, str]:
        """(file, "bundled" or "user") of the model called ``model``, without reading it (``UnknownStyle`` if none)."""
        return self._path(model)

    def info(self, name: str) -> ModelInfo:
        """The model called ``name``, or the model holding the style called ``name``."""
        if valid_name(name) and name not in self._scan():
            name = self.lookup(name)[0]
        path, source = self._path(name)
        return self._read_info(path, name, source)

    def _read_info(self, path: Path, name: str, source: str) -> ModelInfo:
        try:
            version = file_version(path)
        except OSError:
            raise UnknownStyle(f"style {name!r} was removed; see the list of styles") from None
        with self._lock:
            cached = self._info.get(path)
        if cached and cached[0] == version:
            return cached[1]
        try:
            info = read_model_info(path, name=name, source=source)
        except UserError as exc:
            raise _broken(path, exc) from None
        with self._lock:
            self._info[path] = (version, info)
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
        model = self.lookup(name)[0]
        path, source = self._path(model)
        info = self._read_info(path, model, source)  # cached: the session gets the registered name and source
        try:
            return self._stylizer(path, provider, threads, info)
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

    def _stylizer(self, path: Path, provider: str, threads: int | None, info: ModelInfo | None = None) -> Stylizer:
        """One shared session per (file version, provider, threads).

        A model file replaced on disk (new mtime, size or inode) gets a new session,
        as its metadata does. Sessions are built outside the registry-wide
        lock (building one takes ~0.1-2 s), under a lock per key, so a slow
        load of one model never blocks requests for the others.
        """
        try:
            version = file_version(path)
        except OSError:
            raise InputNotFound(f"no such model file: {path}") from None
        key = (path, provider, threads)
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
            stylizer = Stylizer(path, provider=provider, threads=threads, cache_dir=self.cache_dir, info=info)
            with self._lock:
                self._cache[key] = (version, stylizer)
            return stylizer
