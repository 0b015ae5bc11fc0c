"""New styles through the real API app, real job workers and real (tiny) training: ``/v1/styles``.

The base is a two-style ``fast`` network with distinct per-style norms (what
``--add-style`` needs: a multi-style base), exported once per module with the
quick torchscript exporter; the new styles train 2-8 steps at 32 px, so a
training takes seconds. Workers run as threads (``tests.video.jobs_rig``):
the same task code Huey's worker processes run.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import export_style_base
from tests.api.test_api_endpoints import _png_header_bomb
from tests.video.clips import moving_scene, write_clip
from tests.video.jobs_rig import make, wait

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
VIDEO = {"content-type": "video/mp4"}
# Tiny trainings: 2 steps of one 32 px crop, the style's Grams at 32 px, the quick exporter; no training-clock limit
# (tests that stop a training at a step must not have a loaded machine's clock stop it first).
STYLE = {
    "style_base": "duo",
    "style_steps": 2,
    "style_minutes": 0,
    "style_batch_size": 1,
    "style_image_size": 32,
    "style_style_size": 32,
    "style_exporter": "torchscript",
}


@pytest.fixture(scope="module")
def base_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``duo`` (a two-style base: ink, fire) and ``mosaic`` (single-style: not a base)."""
    work = tmp_path_factory.mktemp("style-bases")
    out = tmp_path_factory.mktemp("style-models")
    for name, styles in (("duo", ["ink", "fire"]), ("mosaic", ["mosaic"])):
        export_style_base(out / f"{name}.onnx", styles, work)
    return out


@pytest.fixture
def models(base_models: Path, tmp_path: Path) -> Path:
    """A fresh models folder per test (new styles are installed into it)."""
    d = tmp_path / "models"
    shutil.copytree(base_models, d)
    return d


@pytest.fixture(scope="module")
def style_png() -> bytes:
    """A 96x96 'painting' of coloured waves."""
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.stack([np.sin(xx / 3.0), np.sin((xx + yy) / 5.0), np.cos(yy / 4.0)], axis=2) * 0.5 + 0.5
    return _png((img * 255).astype(np.uint8))


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _post(client: TestClient, name: str | None, image: bytes, headers: dict | None = None, **fields: object):
    data = {k: str(v) for k, v in fields.items()}
    if name is not None:
        data["name"] = name
    return client.post("/v1/styles", files={"image": ("style.png", image, "image/png")}, data=data, headers=headers)


def _error(response, status: int, kind: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["error"] == kind and body["status"] == status and body["message"], body
    assert "\n" not in body["message"] and "/tmp" not in response.text and "Traceback" not in response.text
    return body


def wait_style(client: TestClient, name: str, until: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/styles/{name}").json()
        if body.get("state") in until:
            return body
        assert body.get("state") in ("queued", "running"), body
        time.sleep(0.05)
    raise AssertionError(f"style {name} did not reach {until}: {body}")


def wait_step(client: TestClient, name: str, step: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (body := client.get(f"/v1/styles/{name}").json())["step"] < step or body["state"] != "running":
        assert body["state"] in ("queued", "running") and time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


class PausedTraining:
    """Style trainings (run by the rig's worker threads) that stop at ``step`` until their job is cancelled.

    It wraps the progress callback the worker hands to ``run_style_job``: at ``step`` it reports the step
    (:meth:`wait`) and then holds the training until the job's cancel event is set (a cancel request, a DELETE,
    the worker shutting down), so whatever the test does next lands mid-training on every machine, instead of
    racing the remaining steps. Each job pauses once; a resumed run goes straight on.
    """

    SAFETY_S = 120.0  # only ever reached when the behaviour under test is broken

    def __init__(self, monkeypatch: pytest.MonkeyPatch, step: int) -> None:
        import restyle.jobs.tasks.style as style_task

        self.step = step
        self._lock = threading.Lock()
        self._reached: dict[str, threading.Event] = {}
        train = style_task.run_style_job

        def paused(job, store, styles, settings, cancel, progress):  # noqa: ANN001, ANN202
            def report(done: int, total: int) -> None:
                progress(done, total)
                reached = self._event(job.id)
                if done == self.step and not reached.is_set():
                    reached.set()
                    cancel.wait(self.SAFETY_S)

            return train(job, store, styles, settings, cancel, report)

        monkeypatch.setattr(style_task, "run_style_job", paused)

    def _event(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._reached.setdefault(job_id, threading.Event())

    def wait(self, job_id: str) -> None:
        """Until job ``job_id``'s training has done ``step`` steps (and is held there)."""
        assert self._event(job_id).wait(self.SAFETY_S), f"job {job_id} never reached step {self.step}"


def _names(client: TestClient) -> set[str]:
    return {s["name"] for s in client.get("/v1/styles").json()["styles"]}


def _video(client: TestClient, clip: Path, style: str) -> dict:
    r = client.post(f"/v1/jobs/video?style={style}&stabilize=false", content=clip.read_bytes(), headers=VIDEO)
    assert r.status_code == 202, r.text
    return wait(client, r.json()["id"])


# -- the whole life of a new style ---------------------------------------------------------------------
def test_a_new_style_trains_then_works_everywhere_and_is_deleted(models: Path, style_png: bytes, tmp_path: Path):
    root = tmp_path / "jobs"
    clip = write_clip(tmp_path / "clip.mp4", moving_scene(4, 64, 48), fps=12, audio=False)
    client, rig = make(models, root, **STYLE)
    try:
        # A video job first, so the worker's style catalogue exists before the new style does.
        assert _video(client, clip, "ink")["state"] == "succeeded"

        r = _post(client, "my-waves", style_png)
        assert r.status_code == 202, r.text
        body = r.json()
        assert r.headers["location"] == body["status_url"] == "/v1/styles/my-waves"
        assert body["name"] == "my-waves" and body["preview_url"] == "/v1/styles/my-waves/training-preview"
        job = body["job"]
        assert job["kind"] == "style" and job["state"] == "queued" and job["style"] == "my-waves"
        assert job["params"] == {"base": "duo", "steps": 2} and job["frames_total"] == 2

        status = wait_style(client, "my-waves", ("ready", "failed", "cancelled"))
        assert status == {
            "name": "my-waves",
            "kind": "user",
            "state": "ready",
            "progress": 1.0,
            "step": 2,
            "steps": 2,
            "error": None,
            "job_id": job["id"],
            "preview_url": "/v1/styles/my-waves/preview",
            "training_preview_url": "/v1/styles/my-waves/training-preview",
        }, status
        # the style is installed (ready) before its job folder is cleaned and the job marked succeeded: wait for that
        record = wait(client, job["id"], until=("succeeded", "failed", "cancelled"))
        assert record["state"] == "succeeded" and record["result"] == "/v1/styles/my-waves" and record["attempts"] == 1
        _error(client.get(f"/v1/jobs/{job['id']}/result"), 404, "no_result_file")
        # installed atomically into the user models folder: the model and its card, no temporary files
        assert sorted(p.name for p in models.iterdir()) == ["duo.onnx", "mosaic.onnx", "my-waves.md", "my-waves.onnx"]
        assert "duo.onnx" in (models / "my-waves.md").read_text()  # the card names the base
        # the job keeps only its training preview
        assert sorted(p.name for p in (root / "jobs" / job["id"]).iterdir()) == ["preview.png"]

        entry = next(s for s in client.get("/v1/styles").json()["styles"] if s["name"] == "my-waves")
        assert entry["source"] == "user" and entry["styles"] == ["my-waves"] and entry["model"] == "my-waves"
        photo = client.post(
            "/v1/stylize?style=my-waves&format=png&max_size=64",
            content=SAMPLE.read_bytes(),
            headers={"content-type": "image/jpeg"},
        )
        assert photo.status_code == 200 and photo.headers["x-model"] == "my-waves", photo.text
        assert Image.open(io.BytesIO(photo.content)).format == "PNG"
        grid = client.get("/v1/styles/my-waves/training-preview")
        assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(grid.content)).size[0] > 32  # photo above, the new style below
        thumb = client.get("/v1/styles/my-waves/preview")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        # the same worker, whose catalogue predates the style, runs a video job in it: no restart needed
        assert _video(client, clip, "my-waves")["state"] == "succeeded"

        assert client.delete("/v1/styles/my-waves").status_code == 204
        _error(client.get("/v1/styles/my-waves"), 404, "unknown_style")
        assert "my-waves" not in _names(client) and {"ink", "fire", "mosaic"} <= _names(client)
        assert sorted(p.name for p in models.iterdir()) == ["duo.onnx", "mosaic.onnx"]
        _error(
            client.post(
                "/v1/stylize?style=my-waves", content=SAMPLE.read_bytes(), headers={"content-type": "image/jpeg"}
            ),
            404,
            "unknown_style",
        )
        _error(
            client.post("/v1/jobs/video?style=my-waves", content=clip.read_bytes(), headers=VIDEO), 404, "unknown_style"
        )
        _error(client.get("/v1/styles/my-waves/training-preview"), 404, "unknown_style")
        _error(client.get("/v1/styles/my-waves/preview"), 404, "unknown_style")
        _error(client.delete("/v1/styles/my-waves"), 404, "unknown_style")
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404  # its record went with it
        assert not (root / "jobs" / job["id"]).exists()
    finally:
        rig.close()


# -- bad requests: one JSON error shape, nothing queued, nothing left behind -----------------------------
def test_style_requests_are_validated_before_anything_is_queued(models: Path, style_png: bytes, tmp_path: Path):
    root = tmp_path / "jobs"
    client, rig = make(models, root, workers=0, bundled=True, max_queued_jobs=2, max_upload_bytes=100_000, **STYLE)
    try:
        accepted = _post(client, "pending", style_png)
        assert accepted.status_code == 202, accepted.text
        queued = client.get("/v1/styles/pending").json()
        assert queued["state"] == "queued" and queued["progress"] == 0 and queued["steps"] == 2, queued
        assert queued["preview_url"] is None and queued["kind"] == "user"
        _error(client.get("/v1/styles/pending/training-preview"), 404, "preview_not_ready")

        # names: taken by a bundled style, a bundled model, a user model, a style inside one, a training
        for taken in ("udnie", "classics", "mosaic", "ink", "pending"):
            _error(_post(client, taken, style_png), 409, "style_name_taken")
        for bad in ("Bad Name", "../x", "a" * 65, ""):
            body = _error(_post(client, bad, style_png), 422, "invalid_parameters")
            assert body["details"][0]["loc"][-1] == "name", body
        _error(client.post("/v1/styles", files={"image": ("s.png", style_png, "image/png")}), 422, "invalid_parameters")
        for steps in ("0", "abc", "100000"):
            body = _error(_post(client, "fresh", style_png, steps=steps), 422, "invalid_parameters")
            assert body["details"][0]["loc"][-1] == "steps", body
        # bases: unknown, single-style
        _error(_post(client, "fresh", style_png, base="nope"), 404, "unknown_style")
        body = _error(_post(client, "fresh", style_png, base="mosaic"), 422, "invalid_parameters")
        assert "multi-style" in body["details"][0]["msg"]
        # images: not one, too small, a bomb, too many bytes, wrong content type
        _error(_post(client, "fresh", b"this is not an image" * 10), 415, "bad_image")
        _error(_post(client, "fresh", style_png[: len(style_png) // 2]), 415, "bad_image")  # truncated
        body = _error(
            _post(client, "fresh", _png((np.ones((40, 200, 3)) * 128).astype(np.uint8))), 422, "invalid_parameters"
        )
        assert "64 px" in body["details"][0]["msg"] and body["details"][0]["loc"][-1] == "image"
        _error(_post(client, "fresh", _png_header_bomb(60_000, 60_000)), 413, "too_many_pixels")
        _error(_post(client, "fresh", b"x" * 200_000), 413, "body_too_large")
        _error(
            client.post("/v1/styles?name=fresh", content=b"x", headers={"content-type": "text/plain"}),
            415,
            "unsupported_media_type",
        )
        only = sorted(p.name for p in (root / "jobs").iterdir())
        assert only == [accepted.json()["job"]["id"]], only  # refused requests left no files

        # the queue's limits are the video jobs': the second accepted job fills it
        assert _post(client, "second", style_png, steps=3).status_code == 202
        r = _post(client, "third", style_png)
        assert "queue is full" in _error(r, 429, "queue_full")["message"] and r.headers["retry-after"]

        # status, delete and cancel of what is not a user style
        ready = client.get("/v1/styles/udnie").json()
        assert (ready["state"], ready["kind"], ready["job_id"]) == ("ready", "bundled", None), ready
        assert client.get("/v1/styles/mosaic").json()["kind"] == "user"
        _error(client.get("/v1/styles/nope"), 404, "unknown_style")
        _error(client.get("/v1/styles/nope/training-preview"), 404, "unknown_style")
        body = _error(client.delete("/v1/styles/udnie"), 403, "bundled_style")
        assert "bundled" in body["message"]
        _error(client.delete("/v1/styles/classics"), 403, "bundled_style")
        _error(client.delete("/v1/styles/ink"), 409, "style_name_taken")  # one style of the user model duo
        _error(client.delete("/v1/styles/nope"), 404, "unknown_style")
        _error(client.post("/v1/styles/udnie/cancel"), 409, "job_not_ready")
        assert (models / "duo.onnx").exists()

        # cancel a queued training: cancelled at once, its name free again
        body = client.post("/v1/styles/pending/cancel").json()
        assert body["state"] == "cancelled" and body["error"] == "cancelled on request", body
        _error(client.post("/v1/styles/pending/cancel"), 409, "job_not_ready")
        again = _post(client, "pending", style_png)
        assert again.status_code == 202, again.text
        assert client.get("/v1/styles/pending").json()["job_id"] == again.json()["job"]["id"]  # the newest job
        assert client.delete("/v1/styles/pending").status_code == 204  # every record of the name goes
        _error(client.get("/v1/styles/pending"), 404, "unknown_style")
        assert not (root / "jobs" / again.json()["job"]["id"]).exists()
    finally:
        rig.close()
    client, rig = make(models, tmp_path / "full", workers=0, max_storage_bytes=1000, **STYLE)
    try:
        _error(_post(client, "fresh", style_png), 507, "storage_full")
    finally:
        rig.close()


def test_creating_and_deleting_styles_needs_a_key_when_keys_are_configured(
    models: Path, style_png: bytes, tmp_path: Path
):
    client, rig = make(models, tmp_path / "jobs", workers=0, api_keys="k1", **STYLE)
    key = {"authorization": "Bearer k1"}
    try:
        _error(_post(client, "mine", style_png), 401, "unauthorized")
        _error(_post(client, "mine", style_png, headers={"authorization": "Bearer wrong"}), 401, "unauthorized")
        assert _post(client, "mine", style_png, headers=key).status_code == 202
        _error(client.delete("/v1/styles/mine"), 401, "unauthorized")
        _error(client.get("/v1/styles/mine"), 401, "unauthorized")  # as every /v1 route with keys
        assert client.get("/v1/styles/mine", headers=key).json()["state"] == "queued"
        assert client.delete("/v1/styles/mine", headers=key).status_code == 204
    finally:
        rig.close()


# -- stopping a training: cancel, delete, worker shutdown ------------------------------------------------
def test_cancel_or_delete_a_running_training_installs_nothing(
    models: Path, style_png: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "jobs"
    paused = PausedTraining(monkeypatch, step=1)
    client, rig = make(models, root, **STYLE)
    try:
        job_id = _post(client, "slow", style_png, steps=500).json()["job"]["id"]
        paused.wait(job_id)  # held at step 1 of 500 until the cancel reaches it
        cancelled = client.post("/v1/styles/slow/cancel")
        assert cancelled.status_code == 200, cancelled.text
        body = wait_style(client, "slow", ("cancelled", "ready", "failed"))
        assert body["state"] == "cancelled" and body["step"] <= 1 and body["error"] == "cancelled on request", body
        assert not (root / "jobs" / job_id).exists()  # no run folder, checkpoint or preview left
        assert sorted(p.name for p in models.iterdir()) == ["duo.onnx", "mosaic.onnx"]

        second = _post(client, "slow", style_png, steps=500)  # a cancelled training frees its name
        assert second.status_code == 202, second.text
        paused.wait(second.json()["job"]["id"])
        assert client.delete("/v1/styles/slow").status_code == 204  # stops the training, then deletes
        _error(client.get("/v1/styles/slow"), 404, "unknown_style")
        assert client.get(f"/v1/jobs/{second.json()['job']['id']}").status_code == 404
        assert not (root / "jobs" / second.json()["job"]["id"]).exists()
        assert sorted(p.name for p in models.iterdir()) == ["duo.onnx", "mosaic.onnx"]
        assert "slow" not in _names(client)
    finally:
        rig.close()


def test_a_stopped_worker_requeues_the_training_which_resumes_from_its_checkpoint(
    models: Path, style_png: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "jobs"
    paused = PausedTraining(monkeypatch, step=2)
    client, rig = make(models, root, **STYLE)
    total = 12
    try:
        job_id = _post(client, "patient", style_png, steps=total).json()["job"]["id"]
        paused.wait(job_id)  # held after step 2 until the shutdown below sets its cancel event
        assert rig.workers is not None
        rig.workers.stop()  # graceful shutdown of the only worker, mid-training
        record = client.get(f"/v1/jobs/{job_id}").json()
        assert record["state"] == "queued" and record["attempts"] == 0, record  # handed back, attempt not counted
        checkpoint = torch.load(root / "jobs" / job_id / "run" / "checkpoint.pt", weights_only=False)
        stopped_at = checkpoint["step"]
        assert stopped_at == 2  # checkpointed where it stopped, not at the end

        rig.workers.start_threads()  # a worker comes back: the training continues where it stopped
        body = wait_style(client, "patient", ("ready", "failed", "cancelled"))
        assert body["state"] == "ready" and body["step"] == body["steps"] == total, body
        record = client.get(f"/v1/jobs/{job_id}").json()
        assert record["attempts"] == 1 and record["params"]["resumed_at_step"] == stopped_at, record
        assert f"{total} × 1 at 32 px" in (models / "patient.md").read_text()  # the steps in all, not that many more
        assert "patient" in _names(client)
    finally:
        rig.close()


@pytest.mark.slow
def test_a_worker_killed_mid_training_leaves_the_job_to_another_which_resumes(
    models: Path, style_png: bytes, tmp_path: Path
):
    """kill -9 a real `restyle worker` mid-training: its lease runs out, a second worker takes the job and
    continues from the last periodic checkpoint (every 10 steps), not from the start."""
    import os
    import signal

    from tests.video.jobs_rig import worker_process

    steps = 200
    root = tmp_path / "jobs"
    client, rig = make(models, root, workers=0, job_lease=3.0, **STYLE)
    logs = tmp_path / "workers.log"
    first = worker_process(rig.settings, logs)
    second = None
    try:
        # 200 steps: at 32 px a step takes ~40 ms and progress is reported every 0.5 s, so a shorter run (24 steps
        # once) could be seen at step 11 only when it had already finished; this one is still training when seen
        job_id = _post(client, "hardy", style_png, steps=steps).json()["job"]["id"]
        wait_step(client, "hardy", 11, timeout=600)  # past the checkpoint at step 10
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed = client.get(f"/v1/jobs/{job_id}").json()
        assert killed["state"] == "running", killed  # the kill landed mid-training (nobody knows of it yet)
        second = worker_process(rig.settings, logs)
        body = wait_style(client, "hardy", ("ready", "failed", "cancelled"), timeout=600)
        assert body["state"] == "ready" and body["step"] == steps, (body, logs.read_text()[-3000:])
        record = client.get(f"/v1/jobs/{job_id}").json()
        resumed = record["params"]["resumed_at_step"]
        assert record["attempts"] == 2 and resumed % 10 == 0 and 10 <= resumed < steps, record  # a periodic one
        assert sorted(p.name for p in models.iterdir()) == ["duo.onnx", "hardy.md", "hardy.onnx", "mosaic.onnx"]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        rig.close()
