"""A server's view of the runtime: which styles exist, one shared session per model, warm-up and previews.

Built from the settings by the API (``restyle.api.app``) and by every job
worker process (``restyle.jobs.worker``: video jobs stylize with it, style
jobs look their base up in it), so it lives in the runtime layer, below both.
Everything model-related the routes need goes through this one object, so
routes stay thin and tests can build the app around a real registry
pointed at a temporary models directory. Sessions come from
``Registry.get``, which caches one ``Stylizer`` per model: every request
for a model shares one ONNX Runtime session (``run`` is thread-safe).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restyle.errors import UnknownStyle, UserError, scrub
from restyle.imaging import decode_image, encode_image, fit_max_size
from restyle.runtime import Registry, StylizeOptions
from restyle.runtime.model_info import ModelInfo
from restyle.runtime.registry import file_version
from restyle.runtime.stylizer import Stylizer
from restyle.settings import Settings

log = logging.getLogger("restyle.api")  # the logger name the API has always used for it

SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample.jpg"


@dataclass(frozen=True)
class Choice:
    """A resolved ``style`` parameter: the model and which of its styles (no session yet)."""

    model: str
    style: str  # one of the model's style names
    multi: bool  # the model holds several styles

    @property
    def label(self) -> str:
        return f"{self.model}:{self.style}" if self.multi else self.model


class StyleService:
    """Registry + shared sessions + readiness; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # bundled=False (tests, private deployments): scan only the models directory. Without RESTYLE_MODELS
        # the user folder is storage_root/models, where POST /v1/styles installs styles (created by the first).
        self.registry = Registry(
            user_dir=settings.user_models_dir,
            bundled=settings.bundled,
            cache_dir=settings.cache,
            missing_ok=settings.models is None,
        )
        self._previews: dict[str, tuple[tuple[int, int, int], bytes]] = {}  # name -> (model file version, JPEG)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.warmed: list[str] = []
        self.warmup_error: str | None = None

    # -- catalogue ---------------------------------------------------------------------------
    def infos(self) -> list[ModelInfo]:
        return self.registry.infos()

    def style_names(self) -> list[str]:
        return self.registry.style_names()

    def default_model(self) -> str | None:
        if self.settings.default_style:
            return self.settings.default_style.split(":", 1)[0]
        try:
            return self.registry.default_name()
        except UnknownStyle:
            return None

    def version(self, model: str) -> str:
        """The version of the model ``model`` (its file's short SHA-256; the API's ``X-Model-Version``): from the
        registry's metadata cache, hashed once per file version."""
        return self.registry.info(model).version

    def stylizer(self, model: str) -> Stylizer:
        """The one shared session for ``model`` (loaded on first use)."""
        return self.registry.get(model, provider=self.settings.provider, threads=self.settings.effective_threads)

    def resolve(self, style: str | None) -> Choice:
        """``None`` -> the default; ``MODEL`` -> its first style; ``MODEL:STYLE`` -> that style; else 404.

        Reads only the (cached) model metadata, never builds a session, so it is
        cheap enough for the event loop: unknown styles are refused before they
        take a place in the inference queue.
        """
        spec = style or self.settings.default_style or self.default_model()
        if not spec:
            raise UnknownStyle("no style models are installed on this server")
        model, _, sub = spec.partition(":")
        try:
            if not sub:  # a style inside a multi-style model may be named on its own: "udnie"
                model, inner = self.registry.lookup(model)  # UnknownStyle for unknown or malformed names
                sub = inner or ""
            info = self.registry.info(model)  # UnknownStyle for unknown or malformed names, before any path use
        except UnknownStyle as exc:
            if "available:" not in str(exc):
                raise
            # The registry lists every installed name, other API keys' user styles included: the catalogue
            # (GET /v1/styles) is where a caller sees the names it may use.
            raise UnknownStyle(f"unknown style {spec!r}; see GET /v1/styles") from None
        if sub and sub not in info.style_names:
            raise UnknownStyle(f"model {model!r} has no style {sub!r}; it has: {', '.join(info.style_names)}")
        return Choice(model, sub or info.style_names[0], len(info.style_names) > 1)

    # -- work (called on pool threads) -------------------------------------------------------
    def decode(self, data: bytes, max_size: int | None = None) -> np.ndarray:
        """Bytes to the canonical array, refusing bombs from the header (413) and non-images (415).

        ``max_size``: shrink while still 8-bit (see ``restyle.imaging.open_image``).
        """
        return decode_image(data, max_pixels=self.settings.max_pixels, max_size=max_size)

    def stylize(self, choice: Choice, image: np.ndarray, options: StylizeOptions) -> np.ndarray:
        return self.stylizer(choice.model).stylize(image, options)

    # -- warm-up and previews ----------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def warm_up(self) -> None:
        """Load every model and stylize the sample once (which also renders its preview)."""
        started = time.perf_counter()
        try:
            for name in self.style_names():
                self.preview(name)
                with self._lock:
                    self.warmed.append(name)
            self._ready.set()
            log.info("warm-up done: %d model(s) in %.1f s", len(self.warmed), time.perf_counter() - started)
        except UserError as exc:
            self.warmup_error = scrub(str(exc))
            log.error("warm-up failed: %s", exc)
        except Exception as exc:  # keep serving /healthz; /readyz reports the failure
            self.warmup_error = type(exc).__name__
            log.exception("warm-up failed")

    def mark_ready(self) -> None:
        """Skip warm-up (``warmup=False``): ready as soon as the catalogue is readable."""
        self._ready.set()

    def preview(self, name: str) -> bytes:
        """A JPEG thumbnail of the bundled sample photo in the style ``name`` (or a model's first).

        Rendered once per version of the model file: a user style deleted and
        trained again under the same name gets a new thumbnail.
        """
        choice = self.resolve(name)
        try:
            version = file_version(self.registry.info(choice.model).path)
        except OSError:
            raise UnknownStyle(f"style {name!r} was removed; see the list of styles") from None
        with self._lock:
            cached = self._previews.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        photo = fit_max_size(decode_image(SAMPLE_PHOTO), self.settings.preview_size)
        out = self.stylize(choice, photo, StylizeOptions(style_weights=choice.style))
        data = encode_image(out, "jpeg", 85)
        with self._lock:
            self._previews[name] = (version, data)
        return data

    def source(self, name: str) -> str:
        """``bundled`` or ``user``: where the model holding the style ``name`` lives (404 if unknown)."""
        return self.registry.info(self.resolve(name).model).source
