"""Job kinds at the API (issue 27): a kind that no live worker takes is refused at once, ``/readyz`` reports
each kind, and a video-only worker runs video jobs and leaves style jobs alone.

Real API apps on a real SQLite broker (``tests.video.jobs_rig``); workers are real ``WorkerService``s
(threads, the same task code as worker processes) or, where a worker must only *be there*, its heartbeat
written through the store as its housekeeper writes it. Every wait polls a condition; nothing is timed.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restyle.jobs.store import Job, JobStore
from restyle.jobs.worker import WorkerService
from tests.video.clips import moving_scene, write_clip
from tests.video.jobs_rig import Rig, job_settings, make, wait

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
VIDEO = {"content-type": "video/mp4"}


@pytest.fixture
def models(models_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "models"
    shutil.copytree(models_dir, d)
    return d


def _style(client: TestClient, name: str, headers: dict | None = None):
    files = {"image": ("s.jpg", SAMPLE.read_bytes(), "image/jpeg")}
    return client.post("/v1/styles", files=files, data={"name": name}, headers=headers or {})


def _until(condition: Callable[[], object], what: str, timeout: float = 120.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def _kinds(client: TestClient) -> dict:
    return client.get("/readyz").json()["kinds"]


def _store(rig: Rig) -> JobStore:
    return rig.app.state.jobs.store


def test_a_style_job_with_only_video_workers_is_503_at_once_and_reserves_nothing(models: Path, tmp_path: Path):
    root = tmp_path / "jobs"
    client, rig = make(models, root, workers=0, style_base="duo", max_queued_jobs=1)
    video_workers = WorkerService(rig.settings, processes=1, kinds=("video",))
    video_workers.start_threads()
    try:
        _until(lambda: _kinds(client)["video"]["workers"] == 1, "the video worker's heartbeat")
        r = _style(client, "waves")
        body = r.json()
        assert r.status_code == 503 and body["error"] == "no_worker" and body["status"] == 503, body
        assert "no worker can train styles" in body["message"] and "restyle worker --kinds style" in body["message"]
        assert "restyle[train]" in body["message"] and r.headers["retry-after"] == "30"
        assert "Traceback" not in r.text and str(tmp_path) not in r.text
        store = _store(rig)
        assert store.all() == [] and store.ping() == 0  # no reservation, no job, no message
        assert not (root / "jobs").exists() or not any((root / "jobs").iterdir())  # no upload kept
        assert client.get("/v1/styles/waves").status_code == 404  # the name was not taken either

        store.worker_alive("gpu-box:7", 1, ("style",))  # a training worker joins (its housekeeper's heartbeat)
        r = _style(client, "waves")
        assert r.status_code == 202, r.text  # the refused request held no place: the queue of 1 had room
        assert _kinds(client)["style"] == {"workers": 1, "pending": 1, "accepting": True}
        job = store.get(r.json()["job"]["id"])
        assert job is not None and job.state == "queued"
    finally:
        rig.close()
        video_workers.stop()


def test_a_remembered_answer_is_replayed_even_when_the_kinds_worker_left(models: Path, tmp_path: Path):
    client, rig = make(models, tmp_path / "jobs", workers=0, style_base="duo")
    try:
        store = _store(rig)
        store.worker_alive("gpu-box:7", 1, ("style",))
        first = _style(client, "waves", {"Idempotency-Key": "once"})
        assert first.status_code == 202, first.text
        store.worker_gone("gpu-box:7")
        store.worker_alive("cpu-box:8", 1, ("video",))
        again = _style(client, "waves", {"Idempotency-Key": "once"})
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert _style(client, "other", {"Idempotency-Key": "new"}).status_code == 503
    finally:
        rig.close()


def test_no_live_worker_at_all_still_queues_jobs_for_the_pool_that_is_coming(models: Path, tmp_path: Path):
    """A pool starting, restarting or scaled to zero: the job waits for it (``/readyz`` says no worker runs)."""
    client, rig = make(models, tmp_path / "jobs", workers=0, style_base="duo")
    try:
        store = _store(rig)
        store.worker_alive("cpu-box:8", 1, ("video",), at=time.time() - rig.settings.worker_ttl - 1)  # expired
        assert _kinds(client)["style"] == {"workers": 0, "pending": 0, "accepting": True}
        assert _style(client, "waves").status_code == 202
    finally:
        rig.close()


def test_readyz_reports_each_kind_without_making_the_server_unready(models: Path, tmp_path: Path):
    client, rig = make(models, tmp_path / "jobs", workers=0, style_base="duo")
    try:
        client.__enter__()  # the app's start-up: models ready (warm-up is off in the rig)
        store = _store(rig)
        store.worker_alive("cpu-box:8", 3, ("video",))
        store.worker_alive("cpu-box:9", 1, ("video",))
        r = client.get("/readyz")
        body = r.json()
        assert r.status_code == 200 and body["ready"] is True, body  # photos and videos work: stay in rotation
        assert body["jobs"] == {"broker": "ok", "workers": 4, "pending": 0}
        assert body["kinds"] == {
            "video": {"workers": 4, "pending": 0, "accepting": True},
            "style": {"workers": 0, "pending": 0, "accepting": False},
        }
        assert "cpu-box" not in r.text  # worker names are host:pid; /readyz needs no key
        metrics = client.get("/metrics").text
        assert 'restyle_job_kind_workers{kind="video"} 4.0' in metrics
        assert 'restyle_job_kind_workers{kind="style"} 0.0' in metrics
    finally:
        client.__exit__(None, None, None)
        rig.close()


def test_readyz_kinds_is_null_while_the_broker_is_unreachable(models: Path, tmp_path: Path):
    settings = job_settings(models, tmp_path / "jobs", broker_url="redis://127.0.0.1:1/0")
    rig = Rig(settings, workers=0)
    try:
        body = rig.client.get("/readyz").json()
        assert body["ready"] is False and body["kinds"] is None and body["jobs"]["broker"] == "unavailable"
    finally:
        rig.close()


@pytest.mark.slow
def test_a_video_only_worker_runs_video_jobs_and_leaves_style_jobs_queued(models: Path, tmp_path: Path):
    """The style job is queued first: a worker serving both kinds would take it first (oldest first), so the
    video job finishing proves the video-only worker passed it by. The video result says which model ran."""
    clip = write_clip(tmp_path / "clip.mp4", moving_scene(6, 64, 48), fps=12, audio=False)
    client, rig = make(models, tmp_path / "jobs", workers=0)
    try:
        store = _store(rig)
        style_job = Job(store.new_id(), "style", "queued", "waves", {"base": "duo", "steps": 2}, time.time(), "s.png")
        store.enqueue(style_job)
        rig.workers = WorkerService(rig.settings, processes=1, kinds=("video",))
        rig.workers.start_threads()
        r = client.post("/v1/jobs/video?style=ink&stabilize=false", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 202, r.text
        body = wait(client, r.json()["id"], timeout=240)
        assert body["state"] == "succeeded", body
        assert store.get(style_job.id).state == "queued"  # type: ignore[union-attr]
        assert store.pending_deliveries() == {(style_job.id, 1)}  # its message waits for a style worker
        assert _kinds(client)["style"] == {"workers": 0, "pending": 1, "accepting": False}

        result = client.get(f"/v1/jobs/{body['id']}/result")
        digest = hashlib.sha256((models / "duo.onnx").read_bytes()).hexdigest()[:12]
        assert result.status_code == 200 and result.headers["x-model"] == "duo:ink"
        assert result.headers["x-model-version"] == digest == body["params"]["model_version"]
    finally:
        rig.close()
