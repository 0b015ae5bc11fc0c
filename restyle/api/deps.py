"""FastAPI dependencies: the app's shared objects, and the optional API-key check.

Objects live on ``app.state`` (built once by ``create_app``) and reach the
routes through ``Depends``, so tests can build an app from their own
``Settings`` and nothing depends on module-level globals.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from restyle.api.admission import Admission
from restyle.api.errors import Unauthorized
from restyle.api.inference import DirectInference, MicroBatcher
from restyle.api.metrics import Metrics
from restyle.api.service import StyleService
from restyle.api.settings import Settings


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


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[StyleService, Depends(get_service)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
InferenceDep = Annotated[DirectInference | MicroBatcher, Depends(get_inference)]
