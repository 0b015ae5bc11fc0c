"""A queued job whose queue message is lost is enqueued again by the sweep, and then runs.

The message is deleted from Huey's storage directly (the SQLite ``task`` table), as a worker killed
between taking a message and claiming its job, or an API killed between saving a job and enqueueing
it, would leave it: before the sweep looked only at ``running`` jobs, such a job stayed ``queued``
forever, holding its quota slot and its input.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from restyle.jobs.store import Job, JobStore, make_huey
from restyle.jobs.worker import LOST_MESSAGE_GRACE_S, run_delivery, sweep
from restyle.settings import Settings

VIDEO = {"content-type": "video/mp4"}


def _settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bundled": False,
        "warmup": False,
        "storage_root": root,
        "video_jobs_dir": root / "no-legacy",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _store(root: Path) -> JobStore:
    settings = _settings(root)
    return JobStore(make_huey(settings), settings)


def _queued(store: JobStore) -> Job:
    job = Job(store.new_id(), "video", "queued", "tiny", {}, time.time(), "input.mp4")
    store.enqueue(job)  # delivery 1: the record, then the message
    return job


def _delete_messages(root: Path) -> int:
    """Lose every message: straight from the queue's table, as a crash would, not through Huey."""
    with sqlite3.connect(root / "queue.sqlite3") as db:
        return db.execute("delete from task").rowcount


def test_a_lost_message_is_enqueued_again_after_the_grace_period(tmp_path: Path) -> None:
    store = _store(tmp_path)
    lost, kept = _queued(store), _queued(store)
    assert store.pending_deliveries() == {(lost.id, 1), (kept.id, 1)}
    with sqlite3.connect(tmp_path / "queue.sqlite3") as db:  # lose one message only
        rows = db.execute("select id, data from task").fetchall()
        victim = next(row for row in rows if store.huey.serializer.deserialize(bytes(row[1])).args[0] == lost.id)
        db.execute("delete from task where id = ?", (victim[0],))
    assert store.pending_deliveries() == {(kept.id, 1)}

    t0 = time.time()
    assert sweep(store, store.settings, now=t0)["lost"] == 0  # seen missing once: maybe a worker holds it
    assert sweep(store, store.settings, now=t0 + LOST_MESSAGE_GRACE_S / 2)["lost"] == 0
    assert store.get(lost.id).state == "queued"  # type: ignore[union-attr]
    assert sweep(store, store.settings, now=t0 + LOST_MESSAGE_GRACE_S + 1)["lost"] == 1

    again = store.get(lost.id)
    assert again is not None and again.state == "queued" and again.delivery == 2 and again.attempts == 0
    assert store.pending_deliveries() == {(kept.id, 1), (lost.id, 2)}
    assert store.get(kept.id).delivery == 1  # type: ignore[union-attr]  # a job with its message: untouched
    assert sweep(store, store.settings, now=t0 + 10 * LOST_MESSAGE_GRACE_S)["lost"] == 0  # not twice
    assert store.missing_since == {}


def test_only_one_sweeper_requeues_a_lost_message(tmp_path: Path) -> None:
    first, second = _store(tmp_path), _store(tmp_path)  # two worker services on one broker
    job = _queued(first)
    _delete_messages(tmp_path)
    t0 = time.time()
    for store in (first, second):
        sweep(store, store.settings, now=t0)
    done = [sweep(store, store.settings, now=t0 + LOST_MESSAGE_GRACE_S + 1)["lost"] for store in (first, second)]
    assert done == [1, 0]
    assert first.get(job.id).delivery == 2  # type: ignore[union-attr]
    assert first.pending_deliveries() == {(job.id, 2)}


def test_a_message_taken_by_a_worker_is_not_mistaken_for_a_lost_one(tmp_path: Path) -> None:
    """Taken and claimed: the job is running (the lease sweep's business); the old message, if it comes
    back late, is a no-op (its delivery is claimed)."""
    store = _store(tmp_path)
    job = _queued(store)
    t0 = time.time()
    assert store.huey.dequeue() is not None  # a worker took the message ...
    assert sweep(store, store.settings, now=t0)["lost"] == 0  # ... and has not claimed it yet
    running = store.get(job.id)
    assert running is not None
    assert store.once(f"claim:{job.id}:1")  # ... now it has
    running.state, running.attempts, running.lease_until = "running", 1, t0 + 60
    store.put(running)
    counts = sweep(store, store.settings, now=t0 + LOST_MESSAGE_GRACE_S + 1)
    assert counts["lost"] == 0 and counts["requeued"] == 0
    assert store.get(job.id).delivery == 1  # type: ignore[union-attr]
    assert store.missing_since == {}


def test_a_late_claim_of_a_requeued_message_runs_nothing(tmp_path: Path) -> None:
    """A worker that took the old message and stalled past the grace: its delivery is stale, so it
    returns without touching the job; the new message is the one that runs it."""
    store = _store(tmp_path)
    job = _queued(store)
    stale = store.huey.dequeue()  # taken, then the worker stalls
    assert stale is not None
    t0 = time.time()
    sweep(store, store.settings, now=t0)
    assert sweep(store, store.settings, now=t0 + LOST_MESSAGE_GRACE_S + 1)["lost"] == 1
    run_delivery(store.huey, store.settings, job.id, 1)  # the stalled worker goes on with delivery 1
    again = store.get(job.id)
    assert again is not None and again.state == "queued" and again.delivery == 2 and again.attempts == 0


def test_forget_drops_the_lost_message_keys(tmp_path: Path) -> None:
    store = _store(tmp_path)
    job = _queued(store)
    _delete_messages(tmp_path)
    t0 = time.time()
    sweep(store, store.settings, now=t0)
    sweep(store, store.settings, now=t0 + LOST_MESSAGE_GRACE_S + 1)
    store.forget(job.id)
    assert not [k for k in store.storage.result_items() if job.id in k]


@pytest.mark.slow
def test_a_video_job_whose_message_was_lost_still_runs(tmp_path: Path) -> None:
    """End to end: submitted through the API, its message lost before any worker saw it, found by the
    sweep of a worker service that starts later, and run to success."""
    from restyle.jobs.worker import WorkerService
    from tests.export.models import exported
    from tests.video.clips import moving_scene, write_clip
    from tests.video.jobs_rig import make, wait

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(exported("fast"), models / "tiny.onnx")
    clip = write_clip(tmp_path / "clip.mp4", moving_scene(6, 64, 48), fps=12, audio=False)
    root = tmp_path / "jobs"
    client, rig = make(models, root, workers=0)
    service = None
    try:
        r = client.post("/v1/jobs/video?style=tiny", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert _delete_messages(root) == 1
        store: JobStore = rig.app.state.jobs.store
        t0 = time.time()
        sweep(store, rig.settings, now=t0)  # a sweeper notices: no message for a queued job
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
        assert sweep(store, rig.settings, now=t0 + LOST_MESSAGE_GRACE_S + 1)["lost"] == 1
        service = WorkerService(rig.settings, processes=1)
        service.start_threads()
        body = wait(client, job_id, timeout=240)
        assert body["state"] == "succeeded" and body["attempts"] == 1, body
    finally:
        if service is not None:
            service.stop()
        rig.close()


def test_the_housekeeper_sweeps_lost_messages_on_its_own(tmp_path: Path) -> None:
    """The worker service's own housekeeping finds the lost message (grace shortened for the test)."""
    import restyle.jobs.worker as worker

    settings = _settings(tmp_path, job_lease=3.0, job_lost_grace=0.5)  # sweeps every second
    store = JobStore(make_huey(settings), settings)
    job = _queued(store)
    _delete_messages(tmp_path)
    stop = threading.Event()
    keeper = threading.Thread(target=worker.housekeep, args=(settings, "test:1", 1, stop), daemon=True)
    keeper.start()
    try:
        deadline = time.monotonic() + 60
        # the record's new delivery is saved before its message is enqueued: wait for both, not the first alone
        while store.pending_deliveries() != {(job.id, 2)}:
            assert time.monotonic() < deadline, "the housekeeper never requeued the lost message"
            time.sleep(0.05)
        current = store.get(job.id)
        assert current is not None and current.delivery == 2 and current.state == "queued"
    finally:
        stop.set()
        keeper.join(10)


def test_the_sweep_removes_a_reservation_whose_request_died(tmp_path: Path) -> None:
    """A ``reserved`` record (a quota place held while its upload arrives) whose API process was killed
    mid-upload: the sweep removes it and its folder once its lease is well past; live ones are kept."""
    from restyle.jobs.store import RESERVED
    from restyle.jobs.worker import RESERVATION_SWEEP_MARGIN_S

    store = _store(tmp_path)
    now = time.time()

    def reservation(lease_until: float) -> Job:
        job = Job(store.new_id(), "video", RESERVED, "", {}, now - 600, "", owner="k", lease_until=lease_until)
        store.put(job)
        store.job_dir(job.id).mkdir(parents=True)
        (store.job_dir(job.id) / "input.bin").write_bytes(b"half an upload")
        return job

    dead = reservation(now - RESERVATION_SWEEP_MARGIN_S - 1)
    just_expired = reservation(now - 1)  # its commit is refused already; the sweep leaves it a margin
    alive = reservation(now + 100)
    counts = sweep(store, store.settings, now=now)
    assert counts["reservations"] == 1 and counts["lost"] == 0 and counts["requeued"] == 0, counts
    assert store.get(dead.id) is None and not store.job_dir(dead.id).exists()
    for job in (just_expired, alive):
        assert store.get(job.id).state == RESERVED and store.job_dir(job.id).is_dir()  # type: ignore[union-attr]
    assert sweep(store, store.settings, now=now)["reservations"] == 0
