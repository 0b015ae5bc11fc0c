"""Every setting in one typed object, read from ``RESTYLE_*`` environment variables.

One object (not scattered ``os.environ`` look-ups) so that the CLI, the app
factory, the tests and the documentation agree on names, types, defaults
and limits; pydantic validates them once at start-up, so a typo in a
deployment fails loudly instead of serving with a silently wrong value.
``restyle serve`` flags are written back to the environment so uvicorn
worker processes (``--workers N``) build the same object.

A leaf at the bottom of the package (pydantic, ``restyle.errors`` and the
training recipe ``restyle.recipes``, nothing else), so every layer reads the
same object: the CLI, video and live, training under torchrun, the job
workers and the API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from restyle.errors import UserError
from restyle.recipes import ADD_STYLE_DEFAULTS, DEFAULT_BASE


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _split_list(value: Any) -> Any:
    """Accept ``a,b`` (what people type in env files) as well as a JSON list or a Python list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class TorchrunEnv(BaseSettings):
    """The variables ``torchrun`` sets for each process of a distributed training (no prefix: its names)."""

    model_config = SettingsConfigDict(extra="ignore")

    world_size: int = Field(1, ge=1)
    rank: int = Field(0, ge=0)
    local_rank: int = Field(0, ge=0)


class DisplayEnv(BaseSettings):
    """Whether a desktop session is there to show ``restyle live``'s window (X11 or Wayland)."""

    model_config = SettingsConfigDict(extra="ignore")

    display: str = ""
    wayland_display: str = ""

    @property
    def present(self) -> bool:
        return bool(self.display or self.wayland_display)


def child_environment(settings: Settings | None = None, *, drop_restyle: bool = False) -> dict[str, str]:
    """The environment for a child process (a worker, a server under test), with ``settings`` written in.

    ``drop_restyle``: leave out this process's own ``RESTYLE_*`` variables first, so the child sees only
    what ``settings`` (or the caller) says.
    """
    env = {k: v for k, v in os.environ.items() if not (drop_restyle and k.startswith("RESTYLE_"))}
    if settings is not None:
        env.update(settings.to_env())
    return env


def export_to_environment(settings: Settings) -> None:
    """Write ``settings`` into this process's environment, so uvicorn's worker processes rebuild the same object."""
    os.environ.update(settings.to_env())


def settings_from(overrides: dict[str, object]) -> Settings:
    """``Settings`` from the environment plus the flags given (``None``: not given); a bad value is one line.

    What ``restyle serve`` and ``restyle worker`` build from their flags, so both read the same settings alike.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"invalid settings: {problems}") from None


class RuntimeSettings(BaseSettings):
    """What every front end (CLI, video, live, server) takes from the environment for the runtime.

    The runtime itself reads no environment: ``Registry`` and the providers
    get these values from their callers. A separate class so that
    ``restyle stylize`` does not validate (and fail on) server-only variables.
    """

    model_config = SettingsConfigDict(env_prefix="RESTYLE_", extra="ignore", validate_default=True)

    models: Path | None = Field(
        None, description="Extra directory of .onnx styles (the same RESTYLE_MODELS the CLI reads)."
    )
    cache: Path | None = Field(
        None, description="Cache directory (ONNX Runtime optimised graphs, TensorRT engines); unset = ~/.cache/restyle."
    )


class Settings(RuntimeSettings):
    """Configuration of ``restyle serve``; each field ``foo`` is read from ``RESTYLE_FOO``."""

    # --- where and how to listen -------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless told otherwise.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes; each loads its own models.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = Field(True, description="One structured JSON line per request on the restyle.access logger.")

    # --- models (plus ``models`` and ``cache`` from RuntimeSettings) -----------------------------
    bundled: bool = Field(True, description="Also serve the styles bundled with the package.")
    provider: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    default_style: str | None = Field(None, description="Style used when a request names none (default: the first).")
    warmup: bool = Field(True, description="Run every model once before /readyz says ready.")
    preview_size: int = Field(160, ge=32, le=512, description="Longest side of the style preview thumbnails.")

    # --- admission control ------------------------------------------------------------------
    pool_size: int = Field(0, ge=0, le=256, description="Concurrent inferences per worker; 0 = cores / workers.")
    threads: int = Field(0, ge=0, le=256, description="ONNX Runtime threads per inference; 0 = cores / pool_size.")
    queue_size: int = Field(16, ge=0, le=10_000, description="Requests allowed to wait for the pool; beyond: 429.")
    request_timeout: float = Field(30.0, gt=0, description="Per-request deadline in seconds (queue + inference): 503.")
    body_timeout: float = Field(30.0, gt=0, description="Longest time to receive an upload's body, in seconds: 408.")
    limit_concurrency: int = Field(
        256,
        ge=1,
        description="Requests in progress at once per worker process; beyond: a JSON 503 (server_busy) before any "
        "body is read. /healthz is always answered.",
    )
    batch_size: int = Field(1, ge=1, le=32, description="Micro-batch up to this many same-size requests (1 = off).")
    batch_wait_ms: float = Field(2.0, ge=0, le=1000, description="How long a batch waits for companions.")

    # --- input limits -----------------------------------------------------------------------
    max_upload_bytes: int = Field(20_000_000, ge=1, description="Larger request bodies get 413, unread.")
    max_pixels: int = Field(40_000_000, ge=1, description="Larger images (from the header) get 413: bomb guard.")
    max_size: int = Field(1024, ge=16, description="Default longest side of the output when a request sets none.")
    max_size_limit: int = Field(4096, ge=16, description="Largest max_size a request may ask for.")

    # --- security ---------------------------------------------------------------------------
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Bearer keys; empty = no authentication. Comma-separated in the env."
    )
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer keys that see and manage every key's jobs and user styles (each is also an API key: "
        "setting one turns authentication on). Comma-separated in the env.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS; empty = none (closed)."
    )
    public_url: str = Field(
        "",
        description="The server's public base URL (https://api.example.com) for Location headers; empty: "
        "relative URLs. Never taken from the request's Host header.",
    )

    # --- jobs (video now, training later): queue, workers, storage, quotas ----------------------
    # Why here and not in a JobSettings of their own: the API (which enqueues) and `restyle worker` (which
    # runs) must agree on the broker and the storage root, so both build this one object from RESTYLE_*.
    storage_root: Path = Field(
        Path.home() / ".cache" / "restyle" / "jobs",
        description="Job inputs and results (and the embedded SQLite queue); a shared volume for many machines.",
    )
    broker_url: str = Field(
        "",
        description="Empty: the embedded SQLite queue under storage_root (one machine, no server). "
        "redis://HOST:PORT/DB: a shared Redis for API replicas and workers on many machines.",
    )
    job_workers: int = Field(
        1, ge=0, le=64, description="Worker processes `restyle serve` starts beside the API; 0 = external workers only."
    )
    job_attempts: int = Field(3, ge=1, le=20, description="Runs a job gets when its worker dies (kill -9, OOM).")
    job_lease: float = Field(
        30.0, ge=1, description="Seconds a running job's worker may go silent before the job is given to another."
    )
    job_lost_grace: float = Field(
        30.0,
        gt=0,
        description="Seconds a queued job's queue message may be missing (taken by a process that died before "
        "it claimed the job) before a sweep enqueues the job again.",
    )
    worker_ttl: float = Field(
        10.0,
        ge=3,
        description="Seconds a job worker's heartbeat counts (it beats every 2 s, or every third of this when "
        "shorter): a worker silent this long (killed, its machine lost) no longer counts in /readyz, nor as "
        "serving its job kinds when a job is submitted.",
    )
    max_queued_jobs: int = Field(100, ge=1, description="Jobs waiting to run, server-wide; beyond: 429.")
    max_jobs_per_key: int = Field(10, ge=1, description="Unfinished jobs per API key (or per anonymous user): 429.")
    max_storage_bytes: int = Field(
        20_000_000_000, ge=1, description="Bytes of job files and installed user styles; beyond: 507."
    )
    max_styles_per_key: int = Field(
        20, ge=1, description="User styles (installed or training) per API key; POST /v1/styles beyond: 429."
    )
    style_retention: float = Field(
        90 * 24 * 3600.0,
        ge=0,
        description="Seconds a user style made through the API is kept unused (stylize, preview, video job) "
        "before the job workers' sweep deletes it; 0: never.",
    )
    min_free_bytes: int = Field(
        500_000_000,
        ge=0,
        description="Free space the storage root's file system must keep: an upload that would leave less is "
        "refused with 507 before a byte is written, and /readyz is 503 while less is free.",
    )
    broker_timeout: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Longest wait for the job broker in a submit (a busy SQLite file, a slow Redis); beyond: 503.",
    )
    idempotency_ttl: float = Field(
        24 * 3600.0, gt=0, description="Seconds the first answer to an Idempotency-Key is remembered."
    )
    video_max_upload_bytes: int = Field(200_000_000, ge=1, description="Larger video uploads get 413.")
    video_max_duration: float = Field(120.0, gt=0, description="Longest video (seconds, after start/duration).")
    video_max_frame_pixels: int = Field(
        40_000_000, gt=0, description="Largest frame (width x height) accepted; larger videos get 413."
    )
    video_max_size: int = Field(720, ge=16, description="Default longest side of a video job's output.")
    video_max_size_limit: int = Field(1920, ge=16, description="Largest max_size a video job may ask for.")
    video_retention: float = Field(24 * 3600.0, gt=0, description="Seconds a finished job's files are kept.")
    video_jobs_dir: Path = Field(
        Path.home() / ".cache" / "restyle" / "video-jobs",
        description="Where the old built-in queue kept jobs.sqlite3; its records are imported once (see docs).",
    )

    # --- new styles (POST /v1/styles): `restyle train --add-style` as a job on the same queue ----------
    style_base: str = Field(
        DEFAULT_BASE, description="Multi-style model a new style is trained on when a request names no base."
    )
    style_steps: int = Field(
        ADD_STYLE_DEFAULTS["steps"],
        ge=1,
        description="Training steps of a new style when a request sets none (the --add-style default), the length "
        "of its learning-rate schedule; RESTYLE_STYLE_MINUTES may stop it sooner.",
    )
    style_minutes: float = Field(
        ADD_STYLE_DEFAULTS["max_minutes"],
        ge=0,
        description="Training-clock limit of a new style, in minutes (--max-minutes; 0: none): training stops at "
        "this or at its steps, whichever comes first (2: about 210-250 of the 300 steps on a 2-core CPU with native bf16).",
    )
    style_max_steps: int = Field(2000, ge=1, description="Most training steps a request may ask for.")
    style_batch_size: int = Field(
        ADD_STYLE_DEFAULTS["batch_size"], ge=1, le=64, description="Photos per training step (--batch-size)."
    )
    style_image_size: int = Field(
        ADD_STYLE_DEFAULTS["image_size"], ge=32, le=1024, description="Training crop size in pixels (--image-size)."
    )
    style_style_size: int = Field(
        ADD_STYLE_DEFAULTS["style_size"],
        ge=32,
        le=2048,
        description="Shorter side of the style image when its Gram targets are taken (--style-size); the recipe's "
        "further sizes (style_sizes in restyle/recipes.py) are averaged in.",
    )
    style_photos: Path | None = Field(
        None,
        description="Folder of training photos for new styles (--data); unset: the bundled sample photo alone, "
        "which works but generalises less than a few hundred varied photos.",
    )
    style_exporter: Literal["dynamo", "torchscript"] = Field(
        "dynamo",
        description="ONNX exporter of new styles: dynamo (the supported path, ~20-30 s on 2 cores) or torchscript "
        "(the legacy tracer: an equivalent graph in ~4 s). Both are parity-checked.",
    )

    @field_validator("api_keys", "admin_keys", "cors_origins", mode="before")
    @classmethod
    def _lists_from_text(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip()
        if not value:
            return ""
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
            raise ValueError(f"public_url must be http(s)://HOST[:PORT][/PATH], not {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_sizes(self) -> Settings:
        if self.max_size > self.max_size_limit:
            raise ValueError(f"max_size ({self.max_size}) must not exceed max_size_limit ({self.max_size_limit})")
        if self.style_steps > self.style_max_steps:
            raise ValueError(
                f"style_steps ({self.style_steps}) must not exceed style_max_steps ({self.style_max_steps})"
            )
        return self

    @property
    def user_models_dir(self) -> Path:
        """User styles, and where ``POST /v1/styles`` installs new ones: ``models``, else ``storage_root/models``.

        The default sits on the storage root, which every API replica and
        worker already shares, so a style trained by one worker is served by all.
        """
        return self.models if self.models is not None else self.storage_root / "models"

    @property
    def effective_pool_size(self) -> int:
        """Pool slots: one per core (shared among worker processes) by default, so the CPU is never oversubscribed."""
        return self.pool_size or max(1, cpu_count() // self.workers)

    @property
    def effective_threads(self) -> int:
        """Runtime threads per inference so that pool_size x threads is about the core count."""
        return self.threads or max(1, cpu_count() // self.effective_pool_size)

    def key_values(self) -> set[str]:
        """Every key that authenticates: the API keys and the admin keys."""
        return {key.get_secret_value() for key in [*self.api_keys, *self.admin_keys] if key.get_secret_value()}

    def admin_key_values(self) -> set[str]:
        return {key.get_secret_value() for key in self.admin_keys if key.get_secret_value()}

    def to_env(self) -> dict[str, str]:
        """The ``RESTYLE_*`` variables that rebuild this object (for uvicorn worker processes)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("api_keys", "admin_keys"):
                text = ",".join(key.get_secret_value() for key in value)
            elif name == "cors_origins":
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            env[f"RESTYLE_{name.upper()}"] = text
        return env
