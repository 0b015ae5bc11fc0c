"""User styles in the storage quota, the per-key style limit and style expiry (issue 26, item 9).

* installed user styles made through the API (an owner record, ``style-owner:NAME``) count against
  ``max_storage_bytes`` like job files (507 ``storage_full``); bundled and operator models do not;
* a key that owns ``max_styles_per_key`` styles (installed or training) gets 429 on ``POST /v1/styles``,
  checked again under the broker lock, so a burst cannot pass it;
* the workers' sweep deletes a user style unused for ``style_retention`` (files, owner and use records,
  training jobs) and keeps recently used ones (photos, videos), trainings, operator models and bundled styles.

Real API apps on a real SQLite broker (``tests.video.jobs_rig``) with no job worker: a training stays queued,
and an "installed" style is a model file copied into the user models folder plus its owner record, as the
worker's install and the submit leave them. Time is faked through ``sweep(now=...)``; nothing sleeps.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restyle.api.deps import key_identity
from restyle.api.submission import forget_style_owner, set_style_owner, style_owners
from restyle.jobs.store import Job, JobStore, make_huey
from restyle.jobs.worker import sweep
from restyle.runtime.registry import BUNDLED_DIR
from tests.video.jobs_rig import job_settings, make

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
K1, K2 = "first-secret-key", "second-secret-key"
H1, H2 = ({"authorization": f"Bearer {k}"} for k in (K1, K2))
JOB_ID = "0" * 31 + "1"


@pytest.fixture
def models(models_dir: Path, tmp_path: Path) -> Path:
    """A models folder of this test's own (``duo``, ``mosaic``); styles are "installed" into it."""
    d = tmp_path / "models"
    shutil.copytree(models_dir, d)
    return d


def _install(models: Path, store: JobStore, name: str, owner: str | None = "anonymous") -> int:
    """A user style as the worker installs it (model and card), with its owner record; returns its bytes."""
    shutil.copy(models / "mosaic.onnx", models / f"{name}.onnx")
    (models / f"{name}.md").write_text(f"# {name}\n")
    if owner is not None:
        set_style_owner(store, name, owner, JOB_ID)
    return (models / f"{name}.onnx").stat().st_size + (models / f"{name}.md").stat().st_size


def _style(client: TestClient, name: str, headers: dict | None = None):
    files = {"image": ("s.jpg", SAMPLE.read_bytes(), "image/jpeg")}
    return client.post("/v1/styles", files=files, data={"name": name}, headers=headers or {})


def _error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == kind and body["status"] == status and body["message"], body
    return body


# -- storage ---------------------------------------------------------------------------------------------
def test_installed_user_styles_count_against_the_storage_quota(models: Path, tmp_path: Path) -> None:
    size = (models / "mosaic.onnx").stat().st_size
    client, rig = make(models, tmp_path / "jobs", workers=0, style_base="duo", max_storage_bytes=size)
    try:
        store = rig.app.state.jobs.store
        assert store.bytes_used() == 0  # base models and operator models are not the quota's
        style_bytes = _install(models, store, "waves", owner=None)
        assert store.bytes_used() == 0  # no owner record: a model the operator put in
        set_style_owner(store, "waves", "anonymous", JOB_ID)
        assert store.bytes_used() == style_bytes  # the .onnx and its card
        body = _error(_style(client, "next"), 507, "storage_full")
        assert "job storage is full" in body["message"] and str(tmp_path) not in body["message"]
        forget_style_owner(store, "waves")
        assert _style(client, "next").status_code == 202  # the same upload fits once the style is not counted
    finally:
        rig.close()


# -- the per-key style limit -------------------------------------------------------------------------------
def test_a_key_at_max_styles_per_key_gets_429_on_post_styles(models: Path, tmp_path: Path) -> None:
    settings = {"api_keys": f"{K1},{K2}", "style_base": "duo", "max_styles_per_key": 2}
    client, rig = make(models, tmp_path / "jobs", workers=0, **settings)
    try:
        store = rig.app.state.jobs.store
        training = _style(client, "k1-training", H1)
        assert training.status_code == 202, training.text
        _install(models, store, "k1-installed", key_identity(K1))
        body = _error(_style(client, "k1-third", H1), 429, "too_many_styles")  # one training + one installed
        assert "limit 2" in body["message"]
        assert _style(client, "k2-first", H2).status_code == 202  # another key's share is its own
        # A failed training (no model) holds no place.
        job = store.require(training.json()["job"]["id"])
        job.state, job.finished_at = "failed", time.time()
        store.put(job)
        assert _style(client, "k1-third", H1).status_code == 202
        assert _error(_style(client, "k1-fourth", H1), 429, "too_many_styles")
    finally:
        rig.close()


def test_a_burst_of_style_submits_cannot_pass_the_per_key_limit(models: Path, tmp_path: Path) -> None:
    """Every request passes the early check (no style yet); the one under the broker lock lets one through."""
    settings = {"api_keys": K1, "style_base": "duo", "max_styles_per_key": 1}
    client, rig = make(models, tmp_path / "jobs", workers=0, **settings)
    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = sorted(pool.map(lambda i: _style(client, f"burst-{i}", H1).status_code, range(4)))
        assert statuses.count(202) == 1 and set(statuses) <= {202, 429}, statuses
        owned = [name for name, owner in style_owners(rig.app.state.jobs.store).items() if owner == key_identity(K1)]
        assert len(owned) == 1, owned
    finally:
        rig.close()


# -- expiry ------------------------------------------------------------------------------------------------
def test_a_photo_with_a_user_style_records_its_use_at_most_once_a_while(models: Path, tmp_path: Path) -> None:
    client, rig = make(models, tmp_path / "jobs", workers=0, style_retention=3600)
    try:
        store = rig.app.state.jobs.store
        _install(models, store, "waves")
        assert store.style_uses() == {}
        photo = {"content-type": "image/jpeg"}
        assert client.post("/v1/stylize?style=waves", content=SAMPLE.read_bytes(), headers=photo).status_code == 200
        first = store.style_uses()["waves"]
        assert abs(first - time.time()) < 60
        assert client.get("/v1/styles/waves/preview").status_code == 200
        assert store.style_uses()["waves"] == first  # not rewritten on every request
    finally:
        rig.close()


def _store(models: Path, root: Path, **overrides: object) -> JobStore:
    settings = job_settings(models, root, bundled=True, **overrides)
    return JobStore(make_huey(settings), settings)


def _job(store: JobStore, kind: str, style: str, state: str, at: float) -> Job:
    job = Job(
        id=store.new_id(),
        kind=kind,
        state=state,
        style=style,
        params={},
        created_at=at,
        input_name="",
        finished_at=at if state == "succeeded" else None,
    )
    store.put(job)
    store.job_dir(job.id).mkdir(parents=True)
    (store.job_dir(job.id) / "preview.png").write_bytes(b"png")
    return job


def test_the_sweep_deletes_unused_user_styles_and_keeps_used_training_operator_and_bundled(
    models: Path, tmp_path: Path
) -> None:
    retention = 1000.0
    store = _store(models, tmp_path / "jobs", style_retention=retention)
    now = time.time() + 10 * retention  # every file and record written below is older than the retention
    bundled = sorted(p.name for p in BUNDLED_DIR.iterdir())
    for name in ("old", "photo", "video", "training"):
        _install(models, store, name)
    _install(models, store, "operator", owner=None)
    old_training = _job(store, "style", "old", "succeeded", time.time())
    store.record_style_use("old", time.time())  # used, but long before `now - retention`
    store.record_style_use("photo", now - 10)  # a recent stylize or preview
    _job(store, "video", "video", "succeeded", now - 10)  # a recent video job with it
    _job(store, "style", "training", "running", time.time())  # retrained: in progress

    counts = sweep(store, store.settings, now=now)
    assert counts["styles"] == 1, counts
    assert not any(models.glob("old.*")), sorted(p.name for p in models.iterdir())
    assert "old" not in style_owners(store) and "old" not in store.style_uses()
    assert store.get(old_training.id) is None and not store.job_dir(old_training.id).exists()
    for name in ("photo", "video", "training", "operator"):
        assert (models / f"{name}.onnx").is_file() and (models / f"{name}.md").is_file(), name
    assert set(style_owners(store)) == {"photo", "video", "training"}
    assert store.style_uses()["video"] == pytest.approx(now - 10)  # the video's use outlives its job record
    assert (models / "mosaic.onnx").is_file() and (models / "duo.onnx").is_file()
    assert sorted(p.name for p in BUNDLED_DIR.iterdir()) == bundled and any(BUNDLED_DIR.glob("*.onnx"))

    # Once unused past the retention, the rest goes too; the operator's model and the bundled styles never do.
    later = now + 2 * retention
    for job in store.all():
        if job.state == "running":
            job.state, job.finished_at = "succeeded", now
            store.put(job)
    assert sweep(store, store.settings, now=later)["styles"] == 3
    assert style_owners(store) == {} and store.style_uses() == {}
    assert sorted(p.name for p in models.glob("*.onnx")) == ["duo.onnx", "mosaic.onnx", "operator.onnx"]
    assert sorted(p.name for p in BUNDLED_DIR.iterdir()) == bundled


def test_style_retention_0_never_expires_a_style(models: Path, tmp_path: Path) -> None:
    store = _store(models, tmp_path / "jobs", style_retention=0)
    _install(models, store, "kept")
    assert sweep(store, store.settings, now=time.time() + 10**9)["styles"] == 0
    assert (models / "kept.onnx").is_file() and "kept" in style_owners(store)
