"""The Open Inference Protocol's health and model metadata routes, and model versions (issue 27, item 3).

* ``/v2/health/live`` and ``/v2/health/ready``: the result in the status alone (200 true, 4xx false), an
  empty body, no key; ready exactly when ``/readyz`` is.
* ``/v2/models/{name}[/versions/{v}]`` and ``.../ready``: the protocol's metadata shape, read from the ONNX
  file's stored contract; unknown models and versions are JSON 404s; keys and owners as ``/v1/styles``.
* A model's version is its file's short SHA-256: in ``/v1/styles``, the v2 metadata and the
  ``X-Model-Version`` header of photos and previews, and it changes when the file does.

Real apps on real (tiny, untrained) ONNX models: ``tests/api/conftest.py``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restyle.api.deps import key_identity
from restyle.api.submission import set_style_owner

K1, K2, ADMIN = "first-secret-key", "second-secret-key", "the-admin-key"
H1, H2, HA = ({"authorization": f"Bearer {k}"} for k in (K1, K2, ADMIN))
IMAGE = {"content-type": "image/jpeg"}


def sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@pytest.fixture
def models(models_dir: Path, tmp_path: Path) -> Path:
    """A models folder of this test's own (files are added to it)."""
    d = tmp_path / "models"
    shutil.copytree(models_dir, d)
    return d


def _json_404(response, kind: str = "unknown_model") -> dict:
    body = response.json()
    assert response.status_code == 404 and body["error"] == kind and body["status"] == 404, body
    assert "/tmp" not in response.text and "Traceback" not in response.text
    return body


# -- health ----------------------------------------------------------------------------------------------
def test_health_routes_answer_with_the_status_alone_and_need_no_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys=K1)  # ready (the fixture waits for /readyz)
    for path in ("/v2/health/live", "/v2/health/ready"):
        r = client.get(path)
        assert r.status_code == 200 and r.content == b"", (path, r.text)
    assert client.get("/v2").json() == {
        "name": "restyle",
        "version": client.get("/openapi.json").json()["info"]["version"],
        "extensions": [],
    }


def test_health_ready_is_false_exactly_when_readyz_is(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    from restyle.api.app import create_app
    from restyle.settings import Settings

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the storage root is a file: the job queue cannot open, /readyz is 503
    settings = Settings(bundled=False, warmup=False, storage_root=blocker, video_jobs_dir=tmp_path / "none")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 503
        r = client.get("/v2/health/ready")
        assert r.status_code == 400 and r.content == b""  # the protocol's "false": a 4xx, empty body
        assert client.get("/v2/health/live").status_code == 200


# -- model metadata --------------------------------------------------------------------------------------
def test_model_metadata_has_the_protocols_shape(make_client: Callable[..., TestClient], models_dir: Path) -> None:
    client = make_client()
    r = client.get("/v2/models/duo")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "duo",
        "versions": [sha12(models_dir / "duo.onnx")],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [-1, 3, -1, -1]},
            {"name": "style", "datatype": "FP32", "shape": [-1, 2]},  # two styles: ink, fire
        ],
        "outputs": [{"name": "stylized", "datatype": "FP32", "shape": [-1, 3, -1, -1]}],
    }
    mosaic = client.get("/v2/models/mosaic").json()
    assert mosaic["inputs"][1] == {"name": "style", "datatype": "FP32", "shape": [-1, 1]}

    version = r.json()["versions"][0]
    assert client.get(f"/v2/models/duo/versions/{version}").json() == r.json()
    assert client.get("/v2/models/duo/ready").status_code == 200
    assert client.get(f"/v2/models/duo/versions/{version}/ready").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope",
        "/v2/models/ink",  # a style inside duo: the protocol's models are model files
        "/v2/models/duo.onnx",  # a file name: never near a path
        "/v2/models/Duo",
        "/v2/models/duo/versions/000000000000",
        "/v2/models/nope/ready",
        "/v2/models/duo/versions/000000000000/ready",
    ],
)
def test_unknown_models_and_versions_are_json_404s(make_client: Callable[..., TestClient], path: str) -> None:
    _json_404(make_client().get(path))


def test_model_routes_follow_keys_and_owners(make_client: Callable[..., TestClient], models: Path) -> None:
    """Keys as every /v1 route; another key's user model is a 404 as an unknown one; admins see all."""
    shutil.copy(models / "mosaic.onnx", models / "k2-own.onnx")
    client = make_client(models=models, api_keys=f"{K1},{K2}", admin_keys=ADMIN)
    set_style_owner(client.app.state.jobs.store, "k2-own", key_identity(K2), "0" * 32)  # type: ignore[attr-defined]
    r = client.get("/v2/models/duo")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert client.get("/v2/models/duo", headers=H1).status_code == 200  # nobody owns it: every key's
    _json_404(client.get("/v2/models/k2-own", headers=H1))
    _json_404(client.get("/v2/models/k2-own/ready", headers=H1))
    assert client.get("/v2/models/k2-own", headers=H2).json()["versions"] == [sha12(models / "k2-own.onnx")]
    assert client.get("/v2/models/k2-own/ready", headers=H2).status_code == 200
    assert client.get("/v2/models/k2-own", headers=HA).status_code == 200
    assert client.get("/v2/health/ready").status_code == 200  # health stays open


def test_a_damaged_model_file_is_not_ready_and_its_metadata_a_json_400(
    make_client: Callable[..., TestClient], models: Path
) -> None:
    client = make_client(models=models, warmup=False)
    (models / "broken.onnx").write_bytes(b"not an onnx model")
    r = client.get("/v2/models/broken")
    assert r.status_code == 400 and r.json()["error"] == "broken_model", r.text
    ready = client.get("/v2/models/broken/ready")
    assert ready.status_code == 400 and ready.content == b""


# -- versions --------------------------------------------------------------------------------------------
def test_the_version_header_and_the_catalogue_give_the_files_hash(
    make_client: Callable[..., TestClient], models: Path, sample_bytes: bytes
) -> None:
    client = make_client(models=models)
    versions = {entry["name"]: entry["version"] for entry in client.get("/v1/styles").json()["styles"]}
    duo, mosaic = sha12(models / "duo.onnx"), sha12(models / "mosaic.onnx")
    assert versions == {"ink": duo, "fire": duo, "mosaic": mosaic} and duo != mosaic

    photo = client.post("/v1/stylize?style=fire&max_size=64", content=sample_bytes, headers=IMAGE)
    assert photo.status_code == 200 and photo.headers["x-model"] == "duo:fire"
    assert photo.headers["x-model-version"] == duo
    preview = client.get("/v1/styles/mosaic/preview")
    assert preview.status_code == 200 and preview.headers["x-model-version"] == mosaic

    # Replaced under its name (as a style deleted and trained again would be): a new version everywhere.
    replacement = models / ".mosaic.new"
    shutil.copy(models / "duo.onnx", replacement)
    replacement.replace(models / "mosaic.onnx")
    photo = client.post("/v1/stylize?style=mosaic&max_size=64", content=sample_bytes, headers=IMAGE)
    assert photo.status_code == 200 and photo.headers["x-model-version"] == duo
    assert client.get("/v2/models/mosaic").json()["versions"] == [duo]


def test_liveness_is_answered_when_the_concurrency_limit_is_reached(make_settings: Callable[..., object]) -> None:
    """A liveness probe must not fail because the server is busy: ``/v2/health/live`` is exempt from
    ``RESTYLE_LIMIT_CONCURRENCY`` like ``/healthz``, while other routes get the JSON 503."""
    import anyio
    import httpx

    from restyle.api.app import create_app

    app = create_app(make_settings(limit_concurrency=1, warmup=False))  # type: ignore[arg-type]
    stalled = anyio.Event()
    started = anyio.Event()

    async def body():  # an upload that starts, then stalls until the test lets it go, then ends
        started.set()
        yield b"\xff" * 10
        await stalled.wait()
        yield b"\xff" * 990

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30)
        async with client, anyio.create_task_group() as tasks:
            tasks.start_soon(
                lambda: client.post("/v1/stylize", content=body(), headers={**IMAGE, "content-length": "1000"})
            )
            await started.wait()
            busy = await client.get("/v1/styles")
            assert busy.status_code == 503 and busy.json()["error"] == "server_busy", busy.text
            live = await client.get("/v2/health/live")
            assert live.status_code == 200 and live.content == b""
            stalled.set()

    anyio.run(scenario)
