"""Video jobs through the real API app: submit, poll, download, restart, limits, retention."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from restyle.api.app import create_app
from restyle.api.settings import Settings
from restyle.video.jobs import Job, JobService, JobSettings, JobStore
from tests.video.clips import audio_packets, video_summary


@pytest.fixture
def models_dir(model_path: Path, tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(model_path, d / "tiny.onnx")
    return d


def make(models_dir: Path, jobs_dir: Path, **overrides) -> tuple[TestClient, JobService]:
    settings = Settings(models=models_dir, bundled=False, warmup=False, provider="cpu", threads=1)
    app = create_app(settings, JobSettings(jobs_dir=jobs_dir, **overrides))
    service: JobService = app.state.jobs
    service.start()  # no lifespan without a client context manager: start the workers here
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

    # Jobs "running" when the server died: the new server marks them failed.
    store = JobStore(jobs_dir / "jobs.sqlite3")
    store.update(job_id, state="running", runner="gone-host:1")  # pretend the old process died mid-job
    other = service.new_id()
    store.add(Job(other, "running", "tiny", {}, time.time(), "input.bin", runner="elsewhere:1"))
    alive = service.new_id()  # claimed by a live worker process on this host (uvicorn --workers N): left alone
    store.add(Job(alive, "running", "tiny", {}, time.time(), "input.bin", runner=f"{socket.gethostname()}:1"))
    store.close()

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


SERVER = """
import sys, uvicorn
from pathlib import Path
from tests.video.test_video_jobs import make
client, service = make(Path(sys.argv[1]), Path(sys.argv[2]))
uvicorn.run(client.app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


@pytest.mark.slow
def test_server_killed_mid_job_marks_it_failed(models_dir: Path, tmp_path: Path) -> None:
    """SIGKILL a real uvicorn server while a job runs; the restarted server reports the job failed."""
    import httpx

    from tests.video.clips import moving_scene, write_clip

    src = write_clip(tmp_path / "long.mp4", moving_scene(60, 320, 240), fps=24, audio=True)
    jobs_dir = tmp_path / "jobs"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(models_dir), str(jobs_dir), str(port)], cwd=repo, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        r = httpx.post(
            f"{base}/v1/jobs/video?style=tiny&max_size=320",
            content=src.read_bytes(),
            headers={"content-type": "video/mp4"},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        while (body := httpx.get(f"{base}/v1/jobs/{job_id}").json())["frames_done"] < 2:
            assert body["state"] in ("queued", "running") and time.monotonic() < deadline, body
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    assert not (jobs_dir / job_id / "result.mp4").exists()
    client, service = make(models_dir, jobs_dir)
    try:
        body = client.get(f"/v1/jobs/{job_id}").json()
        assert body["state"] == "failed" and "stopped" in body["error"], body
        assert not (jobs_dir / job_id).exists()  # input and partial output removed
    finally:
        service.close()


def test_a_header_that_understates_the_length_does_not_beat_the_limit(models_dir: Path, tmp_path: Path) -> None:
    from tests.video.clips import claim_duration, moving_scene, write_clip

    long_clip = write_clip(tmp_path / "long.mp4", moving_scene(48, 64, 48), fps=12, audio=False)  # 4 s of frames
    claim_duration(long_clip, 0.25)  # ...whose header says 0.25 s
    client, service = make(models_dir, tmp_path / "jobs", max_duration=0.5)
    try:
        r = client.post(
            "/v1/jobs/video?style=tiny", content=long_clip.read_bytes(), headers={"content-type": "video/mp4"}
        )
        assert r.status_code == 202, r.text  # the header passes the check...
        body = wait(client, r.json()["id"])
        assert body["state"] == "succeeded" and body["frames_done"] <= 6  # ...but only 0.5 s is decoded
    finally:
        service.close()


def test_frame_budget_bounds_decoding_whatever_the_timestamps_say(tmp_path: Path) -> None:
    from restyle.video.io import MAX_FPS, REORDER_DEPTH, probe, read_frames
    from tests.video.clips import moving_scene, write_clip

    # 400 frames 1/240 s apart: a second of timestamps holds 240 frames, twice what any second may cost us.
    clip = write_clip(tmp_path / "dense.mp4", moving_scene(400, 32, 32), fps=24, audio=False, pts=list(range(400)))
    frames = list(read_frames(probe(clip), duration=1.0))
    assert len(frames) <= MAX_FPS * 1.25 + REORDER_DEPTH < 240


def test_frames_over_the_pixel_limit_are_refused_before_decoding(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, service = make(models_dir, tmp_path / "jobs", max_frame_pixels=64 * 48 - 1)  # the clip is 64x48
    try:
        r = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers={"content-type": "video/mp4"})
        assert r.status_code == 413 and "64x48" in str(r.json())
    finally:
        service.close()


def test_a_failed_job_reports_no_server_paths(models_dir: Path, tmp_path: Path) -> None:
    from tests.video.clips import moving_scene, write_clip

    clip = write_clip(tmp_path / "c.mp4", moving_scene(48, 64, 48), fps=12, audio=False)
    data = clip.read_bytes()
    mdat = data.find(b"mdat")
    broken = data[: mdat + 8 + 3000] + bytes(3000) + data[mdat + 8 + 6000 :]  # frames damaged mid-stream
    client, service = make(models_dir, tmp_path / "jobs")
    try:
        r = client.post("/v1/jobs/video?style=tiny", content=broken, headers={"content-type": "video/mp4"})
        if r.status_code != 202:  # some FFmpeg builds already refuse it at probe: still no paths
            assert str(tmp_path) not in r.text
            return
        body = wait(client, r.json()["id"])
        assert str(tmp_path) not in str(body) and "/jobs/" not in str(body), body
    finally:
        service.close()


def test_a_video_corrupt_mid_stream_fails_alone_and_the_next_job_succeeds(models_dir: Path, tmp_path: Path) -> None:
    """Regression (issue 13): the corrupt job's stage error once set the worker's stop event, so every later
    job stayed queued forever. Now the corrupt job fails with a clear error and the good one after it succeeds."""
    from tests.video.clips import corrupt_midstream, moving_scene, write_clip

    good = write_clip(tmp_path / "good.mp4", moving_scene(48, 64, 48), fps=12, audio=False)
    bad = corrupt_midstream(good, tmp_path / "bad.mp4")
    client, service = make(models_dir, tmp_path / "jobs")
    try:
        video = {"content-type": "video/mp4"}
        r_bad = client.post("/v1/jobs/video?style=tiny&stabilize=false", content=bad.read_bytes(), headers=video)
        assert r_bad.status_code == 202, r_bad.text  # the header and first frames are fine: accepted
        r_good = client.post("/v1/jobs/video?style=tiny&stabilize=false", content=good.read_bytes(), headers=video)
        assert r_good.status_code == 202, r_good.text
        failed = wait(client, r_bad.json()["id"])
        assert failed["state"] == "failed" and "decoded at frame" in failed["error"], failed
        done = wait(client, r_good.json()["id"], timeout=30)
        assert done["state"] == "succeeded" and done["frames_done"] == 48, done
    finally:
        service.close()
