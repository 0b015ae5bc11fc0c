"""Video jobs through the real API app and real workers: submit, poll, download, cancel, limits, retention."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from restyle.jobs.store import JobStore, make_huey
from restyle.jobs.worker import sweep
from restyle.settings import Settings
from tests.video.clips import audio_packets, moving_scene, video_summary, write_clip
from tests.video.jobs_rig import make, wait, wait_frames

VIDEO = {"content-type": "video/mp4"}


@pytest.fixture
def models_dir(model_path: Path, tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(model_path, d / "tiny.onnx")
    return d


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames at 320x240: long enough to catch a job while it runs."""
    return write_clip(tmp_path_factory.mktemp("long") / "long.mp4", moving_scene(60, 320, 240), fps=24, audio=True)


def test_job_runs_to_completion_in_a_worker(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs")
    try:
        r = client.post("/v1/jobs/video?style=tiny&stabilize=true", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert r.headers["location"].endswith(f"/v1/jobs/{job_id}") and r.json()["state"] == "queued"
        body = wait(client, job_id)
        assert body["state"] == "succeeded", body
        assert body["progress"] == 1.0 and body["frames_done"] == 12 and body["expires_at"] > time.time()
        assert body["attempts"] == 1 and body["result"] == f"/v1/jobs/{job_id}/result"
        result = client.get(f"/v1/jobs/{job_id}/result")
        assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
        out = tmp_path / "result.mp4"
        out.write_bytes(result.content)
        assert video_summary(out)[:2] == (12, 12)
        assert audio_packets(out) == audio_packets(clip)
    finally:
        rig.close()


def test_a_long_poll_answers_when_the_job_ends_and_not_before(
    clip: Path, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restyle.api.jobs as jobs_api

    reads = {"count": 0}
    rechecked = threading.Event()  # the long poll read the record again: it is holding the answer
    lock = threading.Lock()
    visible_job = jobs_api.visible_job

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        job = visible_job(*args, **kwargs)
        with lock:
            reads["count"] += 1
            if reads["count"] >= 3:
                rechecked.set()
        return job

    monkeypatch.setattr(jobs_api, "visible_job", counted)
    client, rig = make(models_dir, tmp_path / "jobs", workers=0)  # no worker yet: the job stays queued
    try:
        job_id = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO).json()["id"]
        assert client.get(f"/v1/jobs/{job_id}?wait=31").status_code == 422  # longer than MAX_WAIT_S
        with ThreadPoolExecutor(1) as pool:
            reads["count"] = 0
            held = pool.submit(lambda: client.get(f"/v1/jobs/{job_id}?wait=30").json())
            assert rechecked.wait(60), "the long poll never read the job again"
            assert not held.done()  # the job is queued: the poll holds its answer and keeps checking
            from restyle.jobs.worker import WorkerService

            rig.workers = WorkerService(rig.settings, processes=1)
            rig.workers.start_threads()
            body = held.result(timeout=120)  # answered when the job ended (a timeout only fails the test)
        while body["state"] in ("queued", "running"):  # only on a machine too slow to finish within 30 s
            body = client.get(f"/v1/jobs/{job_id}?wait=30").json()
        assert body["state"] == "succeeded", body
        reads["count"] = 0
        assert client.get(f"/v1/jobs/{job_id}?wait=30").json()["state"] == "succeeded"
        assert reads["count"] == 1  # a finished job is answered on its first read, whatever the wait
    finally:
        rig.close()


def test_finished_job_is_still_known_after_restart_and_expires(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root)
    try:
        files = {"video": ("clip.mp4", clip.read_bytes(), "video/mp4")}
        r = client.post("/v1/jobs/video", files=files, data={"style": "tiny", "max_size": "32", "stabilize": "false"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert r.json()["params"] == {"max_size": 32, "start": 0.0, "duration": 120.0, "stabilize": False}
        assert wait(client, job_id)["state"] == "succeeded"
    finally:
        rig.close()
    client, rig = make(models_dir, root, workers=0)  # a new API process on the same storage root
    try:
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "succeeded"
        r = client.get(f"/v1/jobs/{job_id}/result")
        assert r.status_code == 200 and len(r.content) > 1000
        assert not list((root / "jobs" / job_id).glob("input*"))  # the upload is deleted once the job ends
        store = rig.app.state.jobs.store
        assert sweep(store, rig.settings, now=time.time() + 25 * 3600)["expired"] == 1  # past the retention
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "expired"
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 410
        assert not (root / "jobs" / job_id).exists()
        assert sweep(store, rig.settings, now=time.time() + 8 * 25 * 3600)["forgotten"] == 1
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    finally:
        rig.close()


def _error(response, status: int, kind: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["error"] == kind and body["status"] == status and body["message"], body
    return body


def test_job_request_errors_are_one_json_shape(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, video_max_upload_bytes=len(clip.read_bytes()) - 1)
    try:
        _error(client.post("/v1/jobs/video", content=clip.read_bytes(), headers=VIDEO), 413, "body_too_large")
        body = _error(
            client.post("/v1/jobs/video?style=tiny", content=b"not a video at all" * 10, headers=VIDEO),
            415,
            "bad_video",
        )
        assert "video" in body["message"]
        _error(client.post("/v1/jobs/video?style=nope", content=b"x" * 100, headers=VIDEO), 404, "unknown_style")
        body = _error(
            client.post("/v1/jobs/video?max_size=abc", content=b"x", headers=VIDEO), 422, "invalid_parameters"
        )
        assert body["details"][0]["loc"][-1] == "max_size"
        _error(client.post("/v1/jobs/video?max_size=5000", content=b"x", headers=VIDEO), 422, "invalid_parameters")
        _error(client.post("/v1/jobs/video?start=-1", content=b"x", headers=VIDEO), 422, "invalid_parameters")
        _error(
            client.post("/v1/jobs/video", content=b"x", headers={"content-type": "text/plain"}),
            415,
            "unsupported_media_type",
        )
        _error(client.post("/v1/jobs/video", files={"image": ("a.mp4", b"x")}), 422, "invalid_parameters")
        _error(client.get("/v1/jobs/" + "0" * 32), 404, "job_not_found")
        assert client.get("/v1/jobs/..%2F..%2Fetc").status_code == 404
        assert not (root / "jobs").exists() or not list((root / "jobs").iterdir())  # nothing left behind
    finally:
        rig.close()


def test_duration_limit(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", video_max_duration=0.5)
    try:
        r = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 413 and "limit" in r.text
        r = client.post("/v1/jobs/video?style=tiny&duration=0.25", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 202
        assert wait(client, r.json()["id"])["frames_done"] == 3
    finally:
        rig.close()


def test_a_header_that_understates_the_length_does_not_beat_the_limit(models_dir: Path, tmp_path: Path) -> None:
    from tests.video.clips import claim_duration

    long_clip = write_clip(tmp_path / "long.mp4", moving_scene(48, 64, 48), fps=12, audio=False)  # 4 s of frames
    claim_duration(long_clip, 0.25)  # ...whose header says 0.25 s
    client, rig = make(models_dir, tmp_path / "jobs", video_max_duration=0.5)
    try:
        r = client.post("/v1/jobs/video?style=tiny", content=long_clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 202, r.text  # the header passes the check...
        body = wait(client, r.json()["id"])
        assert body["state"] == "succeeded" and body["frames_done"] <= 6  # ...but only 0.5 s is decoded
    finally:
        rig.close()


def test_frame_budget_bounds_decoding_whatever_the_timestamps_say(tmp_path: Path) -> None:
    from restyle.video.io import MAX_FPS, REORDER_DEPTH, probe, read_frames
    from tests.video.clips import moving_scene, write_clip

    # 400 frames 1/240 s apart: a second of timestamps holds 240 frames, twice what any second may cost us.
    clip = write_clip(tmp_path / "dense.mp4", moving_scene(400, 32, 32), fps=24, audio=False, pts=list(range(400)))
    frames = list(read_frames(probe(clip), duration=1.0))
    assert len(frames) <= MAX_FPS * 1.25 + REORDER_DEPTH < 240


def test_frames_over_the_pixel_limit_are_refused_before_decoding(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", workers=0, video_max_frame_pixels=64 * 48 - 1)  # 64x48 clip
    try:
        r = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 413 and "64x48" in str(r.json())
    finally:
        rig.close()


def test_a_video_corrupt_mid_stream_fails_alone_and_the_next_job_succeeds(models_dir: Path, tmp_path: Path) -> None:
    """Regression (issue 13): the corrupt job's stage error once set the worker's stop event, so every later
    job stayed queued forever. Now the corrupt job fails with a clear error and the good one after it succeeds."""
    from tests.video.clips import corrupt_midstream, moving_scene, write_clip

    good = write_clip(tmp_path / "good.mp4", moving_scene(48, 64, 48), fps=12, audio=False)
    bad = corrupt_midstream(good, tmp_path / "bad.mp4")
    client, rig = make(models_dir, tmp_path / "jobs")
    try:
        video = VIDEO
        r_bad = client.post("/v1/jobs/video?style=tiny&stabilize=false", content=bad.read_bytes(), headers=video)
        assert r_bad.status_code == 202, r_bad.text  # the header and first frames are fine: accepted
        r_good = client.post("/v1/jobs/video?style=tiny&stabilize=false", content=good.read_bytes(), headers=video)
        assert r_good.status_code == 202, r_good.text
        failed = wait(client, r_bad.json()["id"])
        assert failed["state"] == "failed" and "decoded at frame" in failed["error"], failed
        done = wait(client, r_good.json()["id"], timeout=30)
        assert done["state"] == "succeeded" and done["frames_done"] == 48, done
    finally:
        rig.close()
        assert str(tmp_path) not in str(failed) and "/jobs/" not in str(failed)  # no server paths in errors
        assert not (tmp_path / "jobs" / "jobs" / failed["id"]).exists()  # the failed job's files are gone


def test_cancel_a_queued_job_and_a_running_job(clip: Path, long_clip: Path, models_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0)
    try:
        queued = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO).json()["id"]
        body = client.post(f"/v1/jobs/{queued}/cancel").json()
        assert body["state"] == "cancelled" and not (root / "jobs" / queued).exists()
        _error(client.post(f"/v1/jobs/{queued}/cancel"), 409, "job_not_ready")
    finally:
        rig.close()
    client, rig = make(models_dir, root, workers=1)
    try:
        running = client.post("/v1/jobs/video?style=tiny", content=long_clip.read_bytes(), headers=VIDEO).json()["id"]
        later = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO).json()["id"]
        wait_frames(client, running, 2)
        assert client.post(f"/v1/jobs/{running}/cancel").status_code == 200
        body = wait(client, running, until=("cancelled", "succeeded", "failed"))
        assert body["state"] == "cancelled" and body["frames_done"] < 60, body
        assert not (root / "jobs" / running).exists()  # no partial result, no input
        assert client.get(f"/v1/jobs/{queued}").json()["state"] == "cancelled"  # the worker never ran it
        assert wait(client, later, timeout=120)["state"] == "succeeded"  # one job's cancel touches no other
        _error(client.get(f"/v1/jobs/{running}/result"), 409, "job_not_ready")
    finally:
        rig.close()


def test_stopping_a_worker_requeues_its_running_job(long_clip: Path, models_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=1)
    try:
        job_id = client.post("/v1/jobs/video?style=tiny", content=long_clip.read_bytes(), headers=VIDEO).json()["id"]
        wait_frames(client, job_id, 2)
        assert rig.workers is not None
        rig.workers.stop()  # graceful shutdown of the only worker
        body = client.get(f"/v1/jobs/{job_id}").json()
        assert body["state"] == "queued" and body["attempts"] == 0, body  # handed back; the attempt not counted
        assert not list((root / "jobs" / job_id).glob("*.tmp*"))  # the partial output is gone
        rig.workers.start_threads()  # a worker comes back: the job runs from the start
        body = wait(client, job_id, timeout=240)
        assert body["state"] == "succeeded" and body["attempts"] == 1 and body["frames_done"] == 60, body
    finally:
        rig.close()


def test_quotas_answer_429_and_507_with_the_error_shape(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    client, rig = make(models_dir, tmp_path / "a", workers=0, max_queued_jobs=2, max_jobs_per_key=5)
    try:
        assert client.post("/v1/jobs/video?style=tiny", content=data, headers=VIDEO).status_code == 202
        assert client.post("/v1/jobs/video?style=tiny", content=data, headers=VIDEO).status_code == 202
        r = client.post("/v1/jobs/video?style=tiny", content=data, headers=VIDEO)
        assert "queue is full" in _error(r, 429, "queue_full")["message"] and r.headers["retry-after"]
    finally:
        rig.close()
    client, rig = make(models_dir, tmp_path / "b", workers=0, api_keys="k1,k2", max_jobs_per_key=1)
    try:
        k1, k2 = {"authorization": "Bearer k1", **VIDEO}, {"authorization": "Bearer k2", **VIDEO}
        assert client.post("/v1/jobs/video?style=tiny", content=data, headers=k1).status_code == 202
        assert (
            "unfinished jobs"
            in _error(client.post("/v1/jobs/video", content=data, headers=k1), 429, "queue_full")["message"]
        )
        assert (
            client.post("/v1/jobs/video?style=tiny", content=data, headers=k2).status_code == 202
        )  # others unaffected
        _error(client.post("/v1/jobs/video", content=data, headers=VIDEO), 401, "unauthorized")
    finally:
        rig.close()
    client, rig = make(models_dir, tmp_path / "c", workers=0, max_storage_bytes=len(data) * 3)
    try:
        assert client.post("/v1/jobs/video?style=tiny", content=data, headers=VIDEO).status_code == 202
        body = _error(client.post("/v1/jobs/video?style=tiny", content=data * 3, headers=VIDEO), 507, "storage_full")
        assert "storage is full" in body["message"]
    finally:
        rig.close()


def test_readyz_and_metrics_report_the_queue(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", workers=1)
    rig.app.state.service.mark_ready()  # no lifespan (warm-up) without a client context: the models are ready
    try:
        deadline = time.monotonic() + 20
        while (ready := client.get("/readyz").json())["jobs"]["workers"] < 1:  # housekeeping says "alive"
            assert time.monotonic() < deadline, ready
            time.sleep(0.05)
        assert ready["ready"] is True and ready["jobs"]["broker"] == "ok"
        job_id = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO).json()["id"]
        wait(client, job_id)
        text = client.get("/metrics").text
        assert "restyle_job_broker_up 1.0" in text and "restyle_job_queue_depth 0.0" in text
        assert 'restyle_jobs{state="succeeded"} 1.0' in text
        assert 'restyle_job_duration_seconds_count{kind="video"} 1.0' in text
    finally:
        rig.close()


def test_sweep_requeues_an_expired_lease_and_gives_up_after_the_attempts(models_dir: Path, tmp_path: Path) -> None:
    from restyle.jobs.store import Job

    client, rig = make(models_dir, tmp_path / "jobs", workers=0, job_attempts=2)
    try:
        store: JobStore = rig.app.state.jobs.store
        now = time.time()
        job = Job(store.new_id(), "video", "queued", "tiny", {}, now, "input.bin")
        store.enqueue(job)  # delivery 1
        job.state, job.attempts, job.lease_until = "running", 1, now - 1  # its worker died after 1 attempt
        store.put(job)
        assert sweep(store, rig.settings)["requeued"] == 1
        assert sweep(store, rig.settings)["requeued"] == 0  # requeued once, not once per sweeper
        again = store.get(job.id)
        assert again is not None and again.state == "queued" and again.delivery == 2
        again.state, again.attempts, again.lease_until = "running", 2, now - 1  # and died again
        store.put(again)
        assert sweep(store, rig.settings)["gave_up"] == 1
        body = client.get(f"/v1/jobs/{job.id}").json()
        assert body["state"] == "failed" and "stopped 2 times" in body["error"], body
    finally:
        rig.close()


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_it_to_another_worker(long_clip: Path, models_dir: Path, tmp_path: Path) -> None:
    """kill -9 a real `restyle worker` (the whole process group) mid-job; a second worker finishes the job."""
    import os
    import signal

    from tests.video.jobs_rig import worker_process

    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, job_lease=2.0)
    logs = tmp_path / "workers.log"
    first = worker_process(rig.settings, logs)
    second = None
    try:
        r = client.post("/v1/jobs/video?style=tiny&max_size=160", content=long_clip.read_bytes(), headers=VIDEO)
        job_id = r.json()["id"]
        wait_frames(client, job_id, 2, timeout=240)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "running"  # nobody knows yet
        second = worker_process(rig.settings, logs)
        body = wait(client, job_id, timeout=240, log=logs)
        assert body["state"] == "succeeded" and body["attempts"] == 2 and body["frames_done"] == 60, (
            body,
            logs.read_text()[-3000:],
        )
        files = sorted(p.name for p in (root / "jobs" / job_id).iterdir())
        assert files == ["result.mp4"], files  # no partial file from the killed run, input tidied
        assert video_summary(root / "jobs" / job_id / "result.mp4")[0] == 60
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        rig.close()


@pytest.mark.slow
def test_restyle_serve_runs_jobs_in_its_embedded_worker_process(clip: Path, models_dir: Path, tmp_path: Path) -> None:
    """The README's `restyle serve`, nothing else: its own worker process runs the job; stopping the server
    stops the worker too."""
    import httpx

    from tests.api.conftest import start_server, stop_server

    env = {"RESTYLE_STORAGE_ROOT": str(tmp_path / "jobs"), "RESTYLE_PROVIDER": "cpu", "RESTYLE_JOB_WORKERS": "1"}
    server = start_server(models_dir, env)
    try:
        r = httpx.post(f"{server.url}/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO, timeout=30)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 120
        while (body := httpx.get(f"{server.url}/v1/jobs/{r.json()['id']}", timeout=10).json())["state"] != "succeeded":
            assert body["state"] in ("queued", "running") and time.monotonic() < deadline, (body, "".join(server.log))
            time.sleep(0.1)
        ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
        assert ready["jobs"] == {"broker": "ok", "workers": 1, "pending": 0}, ready
        settings = Settings(storage_root=tmp_path / "jobs", bundled=False)
        runner = JobStore(make_huey(settings), settings).require(body["id"]).worker or ""
        assert runner and int(runner.rpartition(":")[2]) != server.proc.pid  # another process than the API
    finally:
        stop_server(server)
    log = "".join(server.log)
    assert "restyle worker" in log and "Traceback" not in log
