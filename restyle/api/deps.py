"""FastAPI dependencies: the app's shared objects, the optional API-key check, and who is calling.

Objects live on ``app.state`` (built once by ``create_app``) and reach the
routes through ``Depends``, so tests can build an app from their own
``Settings`` and nothing depends on module-level globals.

A caller is identified by a short hash of its bearer key (``key_identity``),
never by the key itself: that hash is what job records and style owners
store, so a leaked record or log line reveals no key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from restyle.api.admission import Admission
from restyle.api.errors import Unauthorized
from restyle.api.inference import DirectInference, MicroBatcher
from restyle.api.metrics import Metrics
from restyle.runtime.service import StyleService
from restyle.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> StyleService:
    return request.app.state.service


def get_admission(request: Request) -> Admission:
    return request.app.state.admission


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_inference(request: Request) -> DirectInference | MicroBatcher:
    return request.app.state.inference


_bearer = HTTPBearer(
    auto_error=False,
    description="Needed only when the server is configured with RESTYLE_API_KEYS.",
)


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Pass when no keys are configured, or when ``Authorization: Bearer KEY`` matches one of them."""
    keys: list[bytes] = request.app.state.api_keys
    if not keys:
        return
    given = credentials.credentials.encode() if credentials is not None else b""
    # Compare against every key (no early exit) so timing does not reveal which prefix matched.
    matched = False
    for key in keys:
        matched |= secrets.compare_digest(given, key)
    if not matched:
        raise Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>'")


ANONYMOUS = "anonymous"  # the owner recorded on what is made while no keys are configured


def key_identity(key: str) -> str:
    """The identity stored for a key: the first 16 hex digits of its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def bearer_token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``owner`` is its key's identity (None when the server has no keys: everyone is alike)."""

    owner: str | None
    admin: bool = False

    @property
    def keyed(self) -> bool:
        return self.owner is not None

    @property
    def record_owner(self) -> str:
        """The owner written on what this caller makes."""
        return self.owner or ANONYMOUS

    def sees(self, owner: str | None) -> bool:
        """May read something owned by ``owner`` (None: nobody owns it, e.g. a model the operator installed)?

        Without keys everything is everyone's (as before ownership existed);
        with keys a key sees its own items and unowned ones, an admin key all.
        """
        return self.owner is None or self.admin or owner is None or owner == self.owner

    def owns(self, owner: str | None) -> bool:
        """May change (cancel, delete) something owned by ``owner``, or see its job ids? Unowned: admins only."""
        return self.owner is None or self.admin or (owner is not None and owner == self.owner)


def get_caller(request: Request) -> Caller:
    """The caller of a request that passed ``require_api_key``."""
    if not request.app.state.api_keys:
        return Caller(None)
    token = bearer_token(request)
    given = token.encode()
    admin = False
    for key in sorted(request.app.state.settings.admin_key_values()):  # no early exit, as require_api_key
        admin |= secrets.compare_digest(given, key.encode())
    return Caller(key_identity(token), admin)


SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
ServiceDep = Annotated[StyleService, Depends(get_service)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
InferenceDep = Annotated[DirectInference | MicroBatcher, Depends(get_inference)]
