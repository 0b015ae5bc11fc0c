"""Video jobs through the real API app: submit, poll, download, restart, limits, retention."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restyle.api.app import create_app
from restyle.api.settings import Settings
from restyle.video.jobs import JobService, JobSettings
from restyle.video.jobs_api import create_jobs_router
from tests.video.clips import audio_packets, video_summary


@pytest.fixture
def models_dir(model_path: Path, tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(model_path, d / "tiny.onnx")
    return d


def make(models_dir: Path, jobs_dir: Path, **overrides) -> tuple[TestClient, JobService]:
    settings = Settings(models=models_dir, bundled=False, warmup=False, provider="cpu", threads=1)
    app = create_app(settings)
    service = JobService(JobSettings(jobs_dir=jobs_dir, **overrides), app.state.service)
    app.include_router(create_jobs_router(service))
    service.start()
    return TestClient(app), service


def wait(client: TestClient, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_job_runs_to_completion_and_survives_restart(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    client, service = make(models_dir, jobs_dir)
    try:
        r = client.post(
            "/v1/jobs/video?style=tiny&stabilize=true", content=clip.read_bytes(), headers={"content-type": "video/mp4"}
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert r.headers["location"].endswith(f"/v1/jobs/{job_id}")
        body = wait(client, job_id)
        assert body["state"] == "succeeded", body
        assert body["progress"] == 1.0 and body["frames_done"] == 12 and body["expires_at"] > time.time()
        result = client.get(f"/v1/jobs/{job_id}/result")
        assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
        out = tmp_path / "result.mp4"
        out.write_bytes(result.content)
        assert video_summary(out)[:2] == (12, 12)
        assert audio_packets(out) == audio_packets(clip)
    finally:
        service.close()

    # A job "running" when the server died: the new server marks it failed.
    service.store.__init__(jobs_dir / "jobs.sqlite3")
    service.store.update(job_id, state="running")  # pretend the old process died mid-job
    other = service.new_id()
    from restyle.video.jobs import Job

    service.store.add(Job(other, "running", "tiny", {}, time.time(), "input.bin", runner="elsewhere:1"))
    alive = service.new_id()  # claimed by a live worker process on this host (uvicorn --workers N): left alone
    service.store.add(Job(alive, "running", "tiny", {}, time.time(), "input.bin", runner=f"{socket.gethostname()}:1"))
    service.store.close()

    client, service = make(models_dir, jobs_dir)
    try:
        died = client.get(f"/v1/jobs/{other}").json()
        assert died["state"] == "failed" and "stopped" in died["error"]
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"  # it was marked running above
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409
        assert client.get(f"/v1/jobs/{alive}").json()["state"] == "running"  # pid 1 is alive
    finally:
        service.close()


def test_finished_job_is_still_known_after_restart(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    client, service = make(models_dir, jobs_dir)
    try:
        files = {"video": ("clip.mp4", clip.read_bytes(), "video/mp4")}
        r = client.post("/v1/jobs/video", files=files, data={"style": "tiny", "max_size": "32", "stabilize": "false"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert wait(client, job_id)["state"] == "succeeded"
    finally:
        service.close()
    client, service = make(models_dir, jobs_dir)
    try:
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "succeeded"
        r = client.get(f"/v1/jobs/{job_id}/result")
        assert r.status_code == 200 and len(r.content) > 1000
        assert not list((jobs_dir / job_id).glob("input*"))  # the upload is deleted once the job ends
        assert service.cleanup(now=time.time() + 25 * 3600) == 1  # past the retention period
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "expired"
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 410
        assert not (jobs_dir / job_id).exists()
    finally:
        service.close()


def test_job_request_errors(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, service = make(models_dir, tmp_path / "jobs", max_upload_bytes=len(clip.read_bytes()) - 1, max_duration=60)
    try:
        video = {"content-type": "video/mp4"}
        r = client.post("/v1/jobs/video", content=clip.read_bytes(), headers=video)
        assert r.status_code == 413
        r = client.post("/v1/jobs/video?style=tiny", content=b"not a video at all" * 10, headers=video)
        assert r.status_code == 415 and "video" in r.json()["detail" if "detail" in r.json() else "error"].__str__()
        r = client.post("/v1/jobs/video?style=nope", content=b"x" * 100, headers=video)
        assert r.status_code == 404
        r = client.post("/v1/jobs/video?max_size=abc", content=b"x" * 100, headers=video)
        assert r.status_code == 422
        r = client.post("/v1/jobs/video", content=b"x", headers={"content-type": "text/plain"})
        assert r.status_code == 422
        assert client.get("/v1/jobs/" + "0" * 32).status_code == 404
        assert client.get("/v1/jobs/..%2F..%2Fetc").status_code == 404
        assert list((tmp_path / "jobs").iterdir()) == [tmp_path / "jobs" / "jobs.sqlite3"] or all(
            p.name.startswith("jobs.sqlite3") for p in (tmp_path / "jobs").iterdir()
        )
    finally:
        service.close()


def test_duration_limit(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, service = make(models_dir, tmp_path / "jobs", max_duration=0.5)
    try:
        video = {"content-type": "video/mp4"}
        r = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=video)
        assert r.status_code == 413 and "limit" in r.text
        r = client.post("/v1/jobs/video?style=tiny&duration=0.25", content=clip.read_bytes(), headers=video)
        assert r.status_code == 202
        assert wait(client, r.json()["id"])["frames_done"] == 3
    finally:
        service.close()
