"""The one submission path (issue 26): atomic quota reservations, Idempotency-Key, the broker off the event
loop with a short timeout, the body timeout on every route, validation and the Location header.

Real API apps on a real SQLite broker (``tests.video.jobs_rig``), no job
worker: submitted jobs stay queued. Both job-creating routes are exercised
(``POST /v1/jobs/video`` and ``POST /v1/styles``), since both go through
``restyle.api.submission.submit``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from restyle.api.deps import key_identity
from restyle.api.submission import LOCK_KEY, RESERVED, BrokerBusy, BrokerLock
from restyle.jobs.store import Job, JobStore
from tests.video.clips import moving_scene, write_clip
from tests.video.jobs_rig import Rig, job_settings, make

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
VIDEO = {"content-type": "video/mp4"}
KEY = {"authorization": "Bearer k1"}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_clip(
        tmp_path_factory.mktemp("sub") / "c.mp4", moving_scene(4, 64, 48), fps=12, audio=False
    ).read_bytes()


def _error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == kind and body["status"] == status and body["message"], body
    assert "Traceback" not in response.text and "/tmp" not in response.text
    return body


def post_video(client: TestClient, data: bytes, headers: dict | None = None, query: str = "style=ink"):
    return client.post(f"/v1/jobs/video?{query}", content=data, headers={**VIDEO, **(headers or {})})


def post_style(client: TestClient, name: str, headers: dict | None = None):
    files = {"image": ("s.jpg", SAMPLE.read_bytes(), "image/jpeg")}
    return client.post("/v1/styles", files=files, data={"name": name}, headers=headers or {})


def _jobs(rig: Rig) -> list[Job]:
    return rig.app.state.jobs.store.all()


def _all_at_once(n: int, fn: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``fn(0..n-1)`` on ``n`` threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# -- quotas: check and reserve atomically ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["video", "style"])
def test_sixteen_concurrent_submits_against_a_quota_of_one_accept_exactly_one(
    kind: str, models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    """Regression: the quota was checked before the upload and the job written after it, with nothing held in
    between, so every one of a burst of submits passed the check (eight of eight got 202 with a limit of 1)."""
    rig = make(
        models_dir, tmp_path / "jobs", workers=0, api_keys="k1", max_jobs_per_key=1, style_base="duo", broker_timeout=60
    )[1]
    try:
        with TestClient(rig.app) as client:  # one event loop, as under uvicorn; 16 threads talk to it at once
            if kind == "video":
                responses = _all_at_once(16, lambda i: post_video(client, video, KEY))
            else:
                responses = _all_at_once(16, lambda i: post_style(client, f"burst-{i}", KEY))
        codes = sorted(r.status_code for r in responses)
        assert codes == [202] + [429] * 15, [r.text for r in responses if r.status_code not in (202, 429)]
        for r in responses:
            if r.status_code == 429:
                assert "unfinished jobs" in _error(r, 429, "queue_full")["message"]
        jobs = _jobs(rig)
        assert [j.state for j in jobs] == ["queued"], jobs  # one job, no reservation left behind
        assert sorted(p.name for p in (tmp_path / "jobs" / "jobs").iterdir()) == [jobs[0].id]  # no stray files
    finally:
        rig.close()


def test_the_reservation_holds_across_replicas_sharing_one_broker(
    models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    """Two API apps (two broker connections, as two replicas) on one storage root: the server-wide limit holds."""
    root = tmp_path / "jobs"
    a = make(models_dir, root, workers=0, max_queued_jobs=1, broker_timeout=60)[1]
    b = make(models_dir, root, workers=0, max_queued_jobs=1, broker_timeout=60)[1]
    try:
        clients = (a.client, b.client)
        responses = _all_at_once(16, lambda i: post_video(clients[i % 2], video))
        assert sorted(r.status_code for r in responses) == [202] + [429] * 15, [r.text for r in responses]
        assert all("queue is full" in r.json()["message"] for r in responses if r.status_code == 429)
        assert [j.state for j in _jobs(a)] == ["queued"]
    finally:
        a.close()
        b.close()


def test_a_failed_submit_gives_its_place_back(models_dir: Path, video: bytes, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", workers=0, api_keys="k1", max_jobs_per_key=1)
    try:
        _error(post_video(client, b"not a video" * 100, KEY), 415, "bad_video")  # reserved, then refused
        _error(post_video(client, video, KEY, query="style=nope"), 404, "unknown_style")
        assert post_video(client, video, KEY).status_code == 202  # the quota of 1 is still free
        assert [j.state for j in _jobs(rig)] == ["queued"]
    finally:
        rig.close()


def test_a_reservation_whose_request_died_expires_and_frees_its_place(
    models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, api_keys="k1", max_jobs_per_key=1)
    try:
        store: JobStore = rig.app.state.jobs.store
        # A replica killed mid-upload left its reservation and a partial upload behind.
        dead = Job(store.new_id(), "video", RESERVED, "", {}, time.time() - 999, "", key_identity("k1"))
        dead.lease_until = time.time() - 1
        store.put(dead)
        store.job_dir(dead.id).mkdir(parents=True)
        (store.job_dir(dead.id) / "input.bin").write_bytes(b"partial")
        assert post_video(client, video, KEY).status_code == 202
        assert store.get(dead.id) is None and not store.job_dir(dead.id).exists()
        # a live reservation, though, counts
        live = Job(store.new_id(), "video", RESERVED, "", {}, time.time(), "", key_identity("k1"))
        live.lease_until = time.time() + 999
        store.put(live)
        store.forget(next(j.id for j in store.all() if j.state == "queued"))
        _error(post_video(client, video, KEY), 429, "queue_full")
    finally:
        rig.close()


def test_the_broker_lock_is_exclusive_and_a_dead_holders_lock_is_taken_over(models_dir: Path, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", workers=0)
    try:
        store: JobStore = rig.app.state.jobs.store
        lock = BrokerLock(store)
        with lock.hold(time.monotonic() + 5):
            other = BrokerLock(store)
            with pytest.raises(BrokerBusy), other.hold(time.monotonic() + 0.05):
                pass
        with lock.hold(time.monotonic() + 5):  # released: free again
            pass
        store.storage.put_data(LOCK_KEY, json.dumps({"token": "dead", "until": time.time() - 1}).encode())
        with lock.hold(time.monotonic() + 5):
            assert json.loads(bytes(store.storage.peek_data(LOCK_KEY)))["token"] != "dead"
        assert not store.storage.has_data_for_key(LOCK_KEY)  # released
    finally:
        rig.close()


# -- Idempotency-Key -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["video", "style"])
def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(
    kind: str, models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, api_keys="k1,k2", max_jobs_per_key=1, style_base="duo")

    def post(headers: dict, name: str = "idem"):
        return post_video(client, video, headers) if kind == "video" else post_style(client, name, headers)

    try:
        first = post({**KEY, "Idempotency-Key": "order-1"})
        assert first.status_code == 202, first.text
        # the same key again: the first answer, though the key's quota of 1 is now full and (for a style) the
        # name is taken by the first request's training
        again = post({**KEY, "Idempotency-Key": "order-1"})
        assert again.status_code == 202 and again.json() == first.json(), again.text
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        assert len(_jobs(rig)) == 1  # no second job
        # a new key is a new request (here refused by the quota), as is the same key from another API key
        _error(post({**KEY, "Idempotency-Key": "order-2"}), 429, "queue_full")
        other = post({"authorization": "Bearer k2", "Idempotency-Key": "order-1"}, name="other")
        assert other.status_code == 202 and other.json() != first.json()
    finally:
        rig.close()
    # durable next to the jobs: a new API process (another replica) on the same storage root replays it
    client, rig = make(models_dir, root, workers=0, api_keys="k1,k2", max_jobs_per_key=1, style_base="duo")
    try:
        replay = post({**KEY, "Idempotency-Key": "order-1"})
        assert replay.status_code == 202 and replay.json() == first.json()
        assert len(_jobs(rig)) == 2
    finally:
        rig.close()


def test_concurrent_retries_with_one_idempotency_key_create_one_job(
    models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    rig = make(models_dir, tmp_path / "jobs", workers=0, broker_timeout=60)[1]
    try:
        with TestClient(rig.app) as client:
            responses = _all_at_once(8, lambda i: post_video(client, video, {"Idempotency-Key": "same"}))
        accepted = [r for r in responses if r.status_code == 202]
        assert accepted and {r.json()["id"] for r in accepted} == {_jobs(rig)[0].id}
        for r in responses:
            if r.status_code != 202:
                _error(r, 409, "idempotency_conflict")
        assert len(_jobs(rig)) == 1
    finally:
        rig.close()


def test_a_refused_request_is_not_remembered_and_bad_keys_are_422(
    models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", workers=0)
    try:
        _error(post_video(client, b"nope" * 100, {"Idempotency-Key": "k"}), 415, "bad_video")
        ok = post_video(client, video, {"Idempotency-Key": "k"})  # the retry is processed, not a replayed 415
        assert ok.status_code == 202 and "idempotent-replayed" not in ok.headers
        for bad in ("", "x" * 256, "caf\u00e9"):
            body = _error(
                client.post(
                    "/v1/jobs/video?style=ink",
                    content=video,
                    headers=[(b"content-type", b"video/mp4"), (b"idempotency-key", bad.encode())],
                ),
                422,
                "invalid_parameters",
            )
            assert body["details"][0]["loc"] == ["header", "Idempotency-Key"]
        assert len(_jobs(rig)) == 1
    finally:
        rig.close()


# -- the broker off the event loop, with a short timeout ---------------------------------------------------------
def _lock_sqlite(root: Path) -> sqlite3.Connection:
    """Hold a write lock on the queue's SQLite file, as a long transaction of another process would."""
    conn = sqlite3.connect(root / "queue.sqlite3", timeout=0, isolation_level=None)
    conn.execute("begin exclusive")
    return conn


def test_a_submit_whose_broker_is_locked_is_a_503_after_the_broker_timeout(
    models_dir: Path, video: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the submit waited for SQLite's 30 s busy timeout (twice: 60 s) on the event loop."""
    from restyle.api import submission

    undone = threading.Event()
    release = submission.release

    def watched_release(*args: object) -> None:
        release(*args)  # type: ignore[arg-type]
        undone.set()

    monkeypatch.setattr(submission, "release", watched_release)
    root = tmp_path / "jobs"
    client, rig = make(models_dir, root, workers=0, api_keys="k1", max_jobs_per_key=1, broker_timeout=0.5)
    try:
        rig.app.state.jobs.store  # noqa: B018 - open the queue before locking it
        conn = _lock_sqlite(root)
        try:
            r = post_video(client, video, KEY)
            body = _error(r, 503, "queue_unavailable")
            assert "did not answer within 0.5 s" in body["message"] and r.headers["retry-after"]
            assert conn.in_transaction  # answered while the broker was still locked: not SQLite giving up
            assert not undone.is_set()
        finally:
            conn.rollback()
            conn.close()
        # The call that gave up goes on once the lock is gone, reserves, sees it was abandoned and gives back.
        assert undone.wait(60)
        assert [j for j in _jobs(rig) if j.state == RESERVED] == []
        assert post_video(client, video, KEY).status_code == 202  # the key's quota of 1 was not left taken
    finally:
        rig.close()


def test_the_event_loop_answers_while_a_submit_waits_for_the_broker(
    models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    """Regression: quota checks and the enqueue ran on the event loop, so /healthz stalled behind a locked broker."""
    root = tmp_path / "jobs"
    rig = make(models_dir, root, workers=0, broker_timeout=60)[1]
    try:
        with TestClient(rig.app) as client:  # one event loop for every request, as under uvicorn
            storage = rig.app.state.jobs.store.storage
            waiting = threading.Event()
            put_if_empty = storage.put_if_empty

            def watched(key: str, value: bytes, *args: object) -> bool:
                if key == LOCK_KEY:
                    waiting.set()
                return put_if_empty(key, value, *args)

            storage.put_if_empty = watched
            conn = _lock_sqlite(root)
            try:
                with ThreadPoolExecutor(2) as pool:
                    submitted = pool.submit(post_video, client, video)
                    assert waiting.wait(60)  # the submit is now blocked on the broker
                    health = pool.submit(client.get, "/healthz")
                    assert health.result(timeout=30).status_code == 200
                    assert not submitted.done()  # /healthz answered while the submit still waited
                    conn.rollback()
                    assert submitted.result(timeout=60).status_code == 202
            finally:
                if conn.in_transaction:
                    conn.rollback()
                conn.close()
    finally:
        rig.close()


# -- the body timeout, in the one upload reader, for every route ---------------------------------------------------
async def _stalled_body() -> AsyncIterator[bytes]:
    yield b"\x00" * 1000
    await asyncio.Event().wait()  # the client never sends the rest


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/jobs/video?style=ink", VIDEO),
        ("/v1/styles?name=slow", {"content-type": "image/png"}),
        ("/v1/stylize?style=ink", {"content-type": "image/jpeg"}),
    ],
)
def test_a_body_that_stops_arriving_is_a_408_on_every_upload_route(
    path: str, headers: dict, models_dir: Path, tmp_path: Path
) -> None:
    rig = Rig(job_settings(models_dir, tmp_path / "jobs", body_timeout=0.5, style_base="duo"), workers=0)

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=rig.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.wait_for(client.post(path, content=_stalled_body(), headers=headers), 60)

    try:
        response = asyncio.run(send())
        assert "0.5 s" in _error(response, 408, "body_timeout")["message"]
        if path != "/v1/stylize?style=ink":
            assert _jobs(rig) == []  # the reservation was given back
            assert not (tmp_path / "jobs" / "jobs").exists() or not list((tmp_path / "jobs" / "jobs").iterdir())
    finally:
        rig.close()


# -- validation and Location -----------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["start=1e308", "duration=1e308", "start=1e7", "start=inf", "start=-1"])
def test_out_of_range_video_times_are_422_before_anything_is_queued(
    query: str, models_dir: Path, video: bytes, tmp_path: Path
) -> None:
    """Regression: start=1e308 was accepted (202) and the worker failed with an OverflowError."""
    client, rig = make(models_dir, tmp_path / "jobs", workers=0)
    try:
        body = _error(post_video(client, video, query=f"style=ink&{query}"), 422, "invalid_parameters")
        assert body["details"][0]["loc"][-1] == query.split("=")[0]
        files = {"video": ("c.mp4", video, "video/mp4")}  # as a form field too
        name, value = query.split("=")
        r = client.post("/v1/jobs/video", files=files, data={"style": "ink", name: value})
        assert _error(r, 422, "invalid_parameters")["details"][0]["loc"] == ["body", name]
        assert _jobs(rig) == []
    finally:
        rig.close()


def test_location_is_never_built_from_the_host_header(models_dir: Path, video: bytes, tmp_path: Path) -> None:
    client, rig = make(models_dir, tmp_path / "jobs", workers=0, style_base="duo")
    try:
        evil = {"host": "evil.example"}
        r = post_video(client, video, evil)
        assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        r = post_style(client, "here", evil)
        assert r.status_code == 202 and r.headers["location"] == "/v1/styles/here"
    finally:
        rig.close()
    client, rig = make(
        models_dir, tmp_path / "jobs", workers=0, style_base="duo", public_url="https://api.example.com/restyle/"
    )
    try:
        r = post_video(client, video, {"host": "evil.example"})
        assert r.headers["location"] == f"https://api.example.com/restyle/v1/jobs/{r.json()['id']}"
        r = post_style(client, "there", {"host": "evil.example"})
        assert r.headers["location"] == "https://api.example.com/restyle/v1/styles/there"
    finally:
        rig.close()
