"""Ownership (issue 26): a job or user style belongs to the API key that made it; other keys get 404.

Real API apps on a real SQLite broker (``tests.video.jobs_rig``) with no job
worker, so submitted jobs stay queued; an "installed" user style is its job
plus a model file copied into the user models folder, as the worker's
install leaves it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from restyle.api.deps import Caller
from restyle.api.styles import hidden_styles, style_visible
from tests.video.clips import moving_scene, write_clip
from tests.video.jobs_rig import make

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
VIDEO = {"content-type": "video/mp4"}
K1, K2, ADMIN = "first-secret-key", "second-secret-key", "the-admin-key"
H1, H2, HA = ({"authorization": f"Bearer {k}"} for k in (K1, K2, ADMIN))
KEYS = {"api_keys": f"{K1},{K2}", "admin_keys": ADMIN, "style_base": "duo"}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_clip(
        tmp_path_factory.mktemp("own") / "c.mp4", moving_scene(4, 64, 48), fps=12, audio=False
    ).read_bytes()


@pytest.fixture
def models(models_dir: Path, tmp_path: Path) -> Path:
    """A models folder of this test's own (an install copies a file into it)."""
    d = tmp_path / "models"
    shutil.copytree(models_dir, d)
    return d


def _error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind and body["status"] == status, body
    return body


def _video(client: TestClient, data: bytes, headers: dict, style: str = "ink"):
    return client.post(f"/v1/jobs/video?style={style}", content=data, headers={**VIDEO, **headers})


def _style(client: TestClient, name: str, headers: dict):
    files = {"image": ("s.jpg", SAMPLE.read_bytes(), "image/jpeg")}
    return client.post("/v1/styles", files=files, data={"name": name}, headers=headers)


def test_another_keys_job_is_404_and_untouched(models: Path, video: bytes, tmp_path: Path) -> None:
    client, rig = make(models, tmp_path / "jobs", workers=0, **KEYS)
    try:
        r = _video(client, video, H1)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        # the other key: every job route answers as for a job that does not exist
        for response in (
            client.get(f"/v1/jobs/{job_id}", headers=H2),
            client.get(f"/v1/jobs/{job_id}?wait=1", headers=H2),
            client.get(f"/v1/jobs/{job_id}/result", headers=H2),
            client.post(f"/v1/jobs/{job_id}/cancel", headers=H2),
        ):
            assert _error(response, 404, "job_not_found")["message"] == f"no such job: {job_id}"
        # ...and changed nothing
        assert client.get(f"/v1/jobs/{job_id}", headers=H1).json()["state"] == "queued"
        # an admin key sees and manages every key's jobs
        assert client.get(f"/v1/jobs/{job_id}", headers=HA).json()["state"] == "queued"
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=HA).json()["state"] == "cancelled"
        # the owner still sees it
        assert client.get(f"/v1/jobs/{job_id}", headers=H1).json()["state"] == "cancelled"
    finally:
        rig.close()


def test_the_stored_owner_is_a_hash_of_the_key_never_the_key(models: Path, video: bytes, tmp_path: Path) -> None:
    client, rig = make(models, tmp_path / "jobs", workers=0, **KEYS)
    try:
        job_id = _video(client, video, H1).json()["id"]
        assert _style(client, "mine", H1).status_code == 202
        store = rig.app.state.jobs.store
        assert store.require(job_id).owner == hashlib.sha256(K1.encode()).hexdigest()[:16]
        owner = store.storage.peek_data("style-owner:mine")
        assert hashlib.sha256(K1.encode()).hexdigest()[:16].encode() in bytes(owner)
        stored = b"".join(bytes(v) for v in store.storage.result_items().values())
        assert K1.encode() not in stored  # no raw key anywhere in the broker
    finally:
        rig.close()


def test_another_keys_style_is_404_through_every_route_and_untouched(
    models: Path, video: bytes, tmp_path: Path
) -> None:
    client, rig = make(models, tmp_path / "jobs", workers=0, **KEYS)
    try:
        r = _style(client, "k1-waves", H1)
        assert r.status_code == 202, r.text
        job_id = r.json()["job"]["id"]
        mine = client.get("/v1/styles/k1-waves", headers=H1).json()
        assert mine["state"] == "queued" and mine["job_id"] == job_id  # the owner sees its job id
        for response in (
            client.get("/v1/styles/k1-waves", headers=H2),
            client.get("/v1/styles/k1-waves/training-preview", headers=H2),
            client.post("/v1/styles/k1-waves/cancel", headers=H2),
            client.delete("/v1/styles/k1-waves", headers=H2),
        ):
            body = _error(response, 404, "unknown_style")
            assert job_id not in response.text and "k1-waves" in body["message"]
        assert client.get("/v1/styles/k1-waves", headers=H1).json()["state"] == "queued"  # nothing changed
        assert rig.app.state.jobs.store.require(job_id).state == "queued"
        # the name stays one namespace: the other key cannot take it while it trains
        _error(_style(client, "k1-waves", H2), 409, "style_name_taken")
        admin = client.get("/v1/styles/k1-waves", headers=HA).json()
        assert admin["job_id"] == job_id  # an admin key sees it all

        # installed (the worker's install: the model file in the user models folder, the job succeeded)
        shutil.copy(models / "mosaic.onnx", models / "k1-waves.onnx")
        store = rig.app.state.jobs.store
        job = store.require(job_id)
        job.state = "succeeded"
        store.put(job)
        ready = client.get("/v1/styles/k1-waves", headers=H1).json()
        assert ready["state"] == "ready" and ready["job_id"] == job_id, ready
        _error(client.get("/v1/styles/k1-waves", headers=H2), 404, "unknown_style")
        _error(client.delete("/v1/styles/k1-waves", headers=H2), 404, "unknown_style")
        assert (models / "k1-waves.onnx").exists()
        # another key's style cannot be used by name in a video job either
        _error(_video(client, video, H2, style="k1-waves"), 404, "unknown_style")
        assert _video(client, video, H1, style="k1-waves").status_code == 202
        # for the catalogue (GET /v1/styles): what a key must not see
        assert hidden_styles(store, Caller(hashlib.sha256(K2.encode()).hexdigest()[:16])) == {"k1-waves"}
        assert hidden_styles(store, Caller(hashlib.sha256(K1.encode()).hexdigest()[:16])) == set()
        assert hidden_styles(store, Caller("x", admin=True)) == set()
        # ...and whether a request may use a style by name (GET /v1/styles/{name}/preview, POST /v1/stylize)
        for headers, visible in ((H1, True), (H2, False), (HA, True)):
            raw = [(k.encode(), v.encode()) for k, v in headers.items()]
            request = Request({"type": "http", "app": rig.app, "headers": raw, "method": "GET", "path": "/"})
            assert style_visible(request, "k1-waves") is visible
            assert style_visible(request, "duo:ink") is True  # nobody owns it

        assert client.delete("/v1/styles/k1-waves", headers=H1).status_code == 204
        assert not (models / "k1-waves.onnx").exists()
        _error(client.get("/v1/styles/k1-waves", headers=H1), 404, "unknown_style")
        # the name is free again, for any key
        assert _style(client, "k1-waves", H2).status_code == 202
        assert client.get("/v1/styles/k1-waves", headers=H2).json()["state"] == "queued"
        _error(client.get("/v1/styles/k1-waves", headers=H1), 404, "unknown_style")
    finally:
        rig.close()


def test_another_keys_style_is_absent_from_the_catalogue_and_unusable_for_photos(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /v1/styles`` leaves out other keys' user styles; ``POST /v1/stylize`` and the preview answer 404 for
    them exactly as for an unknown style, and no "unknown style" message lists the installed names."""
    client, rig = make(models, tmp_path / "jobs", workers=0, **KEYS)
    try:
        job_id = _style(client, "k1-waves", H1).json()["job"]["id"]
        shutil.copy(models / "mosaic.onnx", models / "k1-waves.onnx")  # installed, as the worker leaves it
        store = rig.app.state.jobs.store
        job = store.require(job_id)
        job.state = "succeeded"
        store.put(job)
        shutil.copy(models / "mosaic.onnx", models / "operator.onnx")  # a user model no key owns

        def catalogue(headers: dict) -> set[str]:
            r = client.get("/v1/styles", headers=headers)
            assert r.status_code == 200, r.text
            return {entry["name"] for entry in r.json()["styles"]}

        everything = {"ink", "fire", "mosaic", "k1-waves", "operator"}
        assert catalogue(H1) == everything
        assert catalogue(HA) == everything
        assert catalogue(H2) == everything - {"k1-waves"}

        photo = SAMPLE.read_bytes()
        jpeg = {"content-type": "image/jpeg"}
        r = client.post("/v1/stylize?style=k1-waves", content=photo, headers={**jpeg, **H1})
        assert r.status_code == 200 and r.headers["x-model"] == "k1-waves", r.text
        assert client.post("/v1/stylize?style=k1-waves", content=photo, headers={**jpeg, **HA}).status_code == 200
        hidden = _error(
            client.post("/v1/stylize?style=k1-waves", content=photo, headers={**jpeg, **H2}), 404, "unknown_style"
        )
        unknown = _error(
            client.post("/v1/stylize?style=nope", content=photo, headers={**jpeg, **H2}), 404, "unknown_style"
        )
        assert hidden["message"] == unknown["message"].replace("'nope'", "'k1-waves'")  # indistinguishable
        for body in (hidden, unknown):
            assert "available" not in body["message"] and "mosaic" not in body["message"], body
        # the multipart form's own style field is checked the same way
        files = {"image": ("p.jpg", photo, "image/jpeg")}
        r = client.post("/v1/stylize", files=files, data={"style": "k1-waves"}, headers=H2)
        _error(r, 404, "unknown_style")
        assert client.post("/v1/stylize", files=files, data={"style": "operator"}, headers=H2).status_code == 200

        assert client.get("/v1/styles/k1-waves/preview", headers=H1).status_code == 200
        _error(client.get("/v1/styles/k1-waves/preview", headers=H2), 404, "unknown_style")
        assert client.get("/v1/styles/operator/preview", headers=H2).status_code == 200

        # the broker down: owners are unknown, so a key's catalogue lists only what nobody owns for sure (the
        # bundled styles; none in this test) instead of failing; admin keys need no owners
        import restyle.api.routes as routes
        from restyle.jobs.store import QueueUnavailable

        def broker_down(store: object, caller: object) -> set[str]:
            raise QueueUnavailable("the job queue is unavailable")

        monkeypatch.setattr(routes, "hidden_styles", broker_down)
        assert catalogue(H1) == set()
        assert catalogue(HA) == everything
    finally:
        rig.close()


def test_a_model_no_key_owns_is_visible_to_all_and_deleted_by_admins_only(models: Path, tmp_path: Path) -> None:
    shutil.copy(models / "mosaic.onnx", models / "operator.onnx")  # put there by the operator, not by a key
    client, rig = make(models, tmp_path / "jobs", workers=0, **KEYS)
    try:
        for headers in (H1, H2):
            body = client.get("/v1/styles/operator", headers=headers).json()
            assert body["state"] == "ready" and body["kind"] == "user" and body["job_id"] is None, body
        _error(client.delete("/v1/styles/operator", headers=H1), 403, "forbidden")
        assert (models / "operator.onnx").exists()
        assert client.delete("/v1/styles/operator", headers=HA).status_code == 204
        assert not (models / "operator.onnx").exists()
    finally:
        rig.close()


def test_what_was_made_without_keys_belongs_to_no_key_once_keys_are_configured(models: Path, tmp_path: Path) -> None:
    """A job or style made while no keys were configured belongs to "anonymous": keyed callers get 404 (and never
    its job id); admin keys see it."""
    root = tmp_path / "jobs"
    client, rig = make(models, root, workers=0, style_base="duo")
    try:
        job_id = _style(client, "open", {}).json()["job"]["id"]
        assert client.get("/v1/styles/open").json()["job_id"] == job_id  # no keys: everyone is the owner
    finally:
        rig.close()
    client, rig = make(models, root, workers=0, **KEYS)
    try:
        _error(client.get("/v1/styles/open", headers=H1), 404, "unknown_style")
        _error(client.get(f"/v1/jobs/{job_id}", headers=H1), 404, "job_not_found")
        assert client.get("/v1/styles/open", headers=HA).json()["job_id"] == job_id
    finally:
        rig.close()


def test_without_keys_everything_is_shared_as_before(models: Path, video: bytes, tmp_path: Path) -> None:
    client, rig = make(models, tmp_path / "jobs", workers=0, style_base="duo")
    try:
        job_id = _video(client, video, {}).json()["id"]
        other = {"authorization": "Bearer anything"}  # ignored without keys
        assert client.get(f"/v1/jobs/{job_id}", headers=other).json()["state"] == "queued"
        assert _style(client, "shared", {}).status_code == 202
        assert client.get("/v1/styles/shared", headers=other).json()["job_id"] is not None
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=other).json()["state"] == "cancelled"
        assert client.delete("/v1/styles/shared", headers=other).status_code == 204
    finally:
        rig.close()
