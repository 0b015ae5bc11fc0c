"""The Open Inference Protocol's health and model metadata routes (KServe v2, Triton), beside ``/healthz``.

So that Kubernetes probes written for model servers, KServe and Triton-style
tooling (``tritonclient``'s ``is_server_live``/``is_model_ready``/
``get_model_metadata``) work against restyle unchanged. Only what fits an
image service is offered: health and metadata. Inference stays
``POST /v1/stylize``: the protocol's tensor-in-JSON requests would carry a
photo as millions of numbers, where the image route takes the file itself.

* ``GET /v2``: server metadata (name, version, extensions: none).
* ``GET /v2/health/live``: 200 while the process answers (``/healthz``).
* ``GET /v2/health/ready``: 200 when ``/readyz`` would say ready, else 400.
  As the protocol says, health answers carry their result in the status
  alone (200 true, 4xx false) with an empty body; ``/readyz`` says why.
* ``GET /v2/models/{name}[/versions/{version}]``: a model's metadata: its
  versions (the file's short SHA-256, ``restyle.runtime.model_info``), the
  platform (``onnxruntime_onnx``, Triton's name for an ONNX model) and its
  input and output tensors from the contract stored in the ONNX file
  (``restyle.contract``; variable dimensions are -1).
* ``GET /v2/models/{name}[/versions/{version}]/ready``: 200 when the model's
  file is readable and the server's models are warmed up, else 400.

A *model* here is a model file (the ``model`` of each ``GET /v1/styles``
entry), not a style inside one. The health routes need no key, like
``/healthz``; the model routes need one when keys are configured, and
another key's user model is a 404 JSON error as an unknown one, as in
``/v1/styles`` (bundled models and models nobody owns are every key's).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from restyle import __version__
from restyle.api.deps import Caller, CallerDep, ServiceDep, SettingsDep, require_api_key
from restyle.api.routes import readiness
from restyle.api.schemas import ErrorResponse
from restyle.api.submission import style_owner
from restyle.contract import contract as default_contract
from restyle.errors import BrokenModel, UnknownStyle, UserError
from restyle.runtime.model_info import ModelInfo
from restyle.runtime.registry import valid_name
from restyle.runtime.service import StyleService

PLATFORM = "onnxruntime_onnx"  # Triton's platform name for an ONNX model run by ONNX Runtime
# The contract's dtypes (numpy names) as the protocol's tensor data types.
DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
}


class UnknownModel(UserError):
    """No model file of that name (or version), or another API key's user model: 404, as for an unknown style."""

    http_status = 404
    error_kind = "unknown_model"


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(default_factory=list)


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(description="The protocol's tensor data type: FP32, FP16, INT64...")
    shape: list[int] = Field(description="Variable-size dimensions (batch, height, width) are -1.")


class ModelMetadata(BaseModel):
    """The protocol's model metadata response."""

    name: str
    versions: list[str] = Field(description="The model file's version (short SHA-256), as in GET /v1/styles.")
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


public = APIRouter(prefix="/v2", tags=["open inference protocol"])
models = APIRouter(
    prefix="/v2/models",
    tags=["open inference protocol"],
    dependencies=[Depends(require_api_key)],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong API key (only when keys are configured)."},
        404: {"model": ErrorResponse, "description": "Unknown model or version, or another API key's user model."},
    },
)
_HEALTH = {
    200: {"description": "True (empty body)."},
    400: {"description": "False (empty body); GET /readyz says why."},
}


@public.get("", summary="Server metadata (Open Inference Protocol)", response_model=ServerMetadata)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="restyle", version=__version__)


@public.get(
    "/health/live", summary="Liveness (Open Inference Protocol)", response_class=Response, responses={200: _HEALTH[200]}
)
async def server_live() -> Response:
    return Response(status_code=200)


@public.get("/health/ready", summary="Readiness (Open Inference Protocol)", response_class=Response, responses=_HEALTH)
async def server_ready(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    """What ``/readyz`` decides (models warmed up, job queue, supervised worker, storage room), as a status."""
    ready = (await readiness(request, service, settings)).ready
    return Response(status_code=200 if ready else 400)


def find_model(request: Request, service: StyleService, caller: Caller, name: str, version: str | None) -> ModelInfo:
    """The model file ``name`` (at ``version``, when given), if the caller may see it; else ``UnknownModel``.

    Runs on a worker thread: a model not read yet is read and hashed here, and a user model's owner is a
    broker read (only for a keyed caller that is not an admin, as for ``GET /v1/styles``).
    """
    registry = service.registry
    if not valid_name(name) or name not in registry.names():
        raise UnknownModel(f"unknown model {name!r}; the models are the `model` of each GET /v1/styles entry")
    try:
        info = registry.info(name)
    except UnknownStyle:  # removed while we looked
        raise UnknownModel(f"unknown model {name!r}") from None
    owned = info.source == "user" and caller.keyed and not caller.admin  # only then does an owner matter
    if owned and not caller.sees(style_owner(request.app.state.jobs.store, name)):
        raise UnknownModel(f"unknown model {name!r}; the models are the `model` of each GET /v1/styles entry")
    if version is not None and version != info.version:
        raise UnknownModel(f"model {name!r} has no version {version!r}; its version is {info.version!r}")
    return info


def tensors(info: ModelInfo, side: str) -> list[MetadataTensor]:
    """The ``inputs`` or ``outputs`` of the model's stored contract (or the current contract for its styles and
    stride, for a file that predates storing it), in the protocol's terms."""
    stored: dict[str, Any] = info.metadata.contract or default_contract(info.metadata.num_styles, info.stride)
    out = []
    for name, spec in stored.get(side, {}).items():
        dtype = str(spec.get("dtype", "float32"))
        shape = [dim if isinstance(dim, int) else -1 for dim in spec.get("shape", [])]
        out.append(MetadataTensor(name=name, datatype=DATATYPES.get(dtype, dtype.upper()), shape=shape))
    return out


async def _metadata(request: Request, service: StyleService, caller: Caller, name: str, version: str | None) -> Any:
    info = await run_in_threadpool(find_model, request, service, caller, name, version)
    return ModelMetadata(
        name=info.name,
        versions=[info.version],
        platform=PLATFORM,
        inputs=tensors(info, "inputs"),
        outputs=tensors(info, "outputs"),
    )


@models.get("/{name}", summary="Model metadata (Open Inference Protocol)", response_model=ModelMetadata)
async def model_metadata(name: str, request: Request, service: ServiceDep, caller: CallerDep) -> Any:
    return await _metadata(request, service, caller, name, None)


@models.get(
    "/{name}/versions/{version}",
    summary="Model metadata at a version (Open Inference Protocol)",
    response_model=ModelMetadata,
)
async def model_version_metadata(
    name: str, version: str, request: Request, service: ServiceDep, caller: CallerDep
) -> Any:
    return await _metadata(request, service, caller, name, version)


async def _ready(request: Request, service: StyleService, caller: Caller, name: str, version: str | None) -> Response:
    """200 when the model can serve now (its file readable, the server's models warmed up), 400 when not; an
    unknown model is the JSON 404 of the metadata route, so a typo is not mistaken for "not ready yet"."""
    try:
        await run_in_threadpool(find_model, request, service, caller, name, version)
    except BrokenModel:
        return Response(status_code=400)
    return Response(status_code=200 if service.ready else 400)


@models.get(
    "/{name}/ready", summary="Model readiness (Open Inference Protocol)", response_class=Response, responses=_HEALTH
)
async def model_ready(name: str, request: Request, service: ServiceDep, caller: CallerDep) -> Response:
    return await _ready(request, service, caller, name, None)


@models.get(
    "/{name}/versions/{version}/ready",
    summary="Model readiness at a version (Open Inference Protocol)",
    response_class=Response,
    responses=_HEALTH,
)
async def model_version_ready(
    name: str, version: str, request: Request, service: ServiceDep, caller: CallerDep
) -> Response:
    return await _ready(request, service, caller, name, version)
