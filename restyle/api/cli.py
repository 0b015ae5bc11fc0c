"""``restyle serve [--host H] [--port P] [--models DIR] [--workers N]``: run the API under uvicorn.

Flags override the ``RESTYLE_*`` environment; they are written back into
the environment before uvicorn starts so that every worker process builds
the same ``Settings`` through the app factory.
"""

from __future__ import annotations

import argparse
import logging
import os

from pydantic import ValidationError

from restyle.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the stylization HTTP API and web page",
        description="Serve the HTTP API (POST /v1/stylize, GET /v1/styles, /healthz, /readyz, /metrics) and the "
        "web page at /. Every setting can also be given as a RESTYLE_* environment variable (see docs/api.md).",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument("--models", help="directory of extra .onnx styles (RESTYLE_MODELS)")
    p.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    p.set_defaults(func=run)


def _settings_from(args: argparse.Namespace):  # -> Settings (imported lazily: keeps 'restyle --help' fast)
    from restyle.api.settings import Settings

    overrides = {k: v for k in ("host", "port", "models", "workers") if (v := getattr(args, k, None)) is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"invalid settings: {problems}") from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings_from(args)
    os.environ.update(settings.to_env())  # workers rebuild the same Settings from the environment
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    if settings.workers == 1:
        from restyle.api.app import create_app

        app = create_app(settings)  # fail here, with a clear message, on a bad models directory
        target: object = app
        factory = False
    else:
        target, factory = "restyle.api.app:create_app", True
    uvicorn.run(
        target,  # type: ignore[arg-type]
        factory=factory,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if factory else None,
        log_level=settings.log_level,
        access_log=False,  # our middleware writes one structured line per request instead
        proxy_headers=False,
        server_header=False,
        limit_concurrency=settings.limit_concurrency,
    )
    return 0
