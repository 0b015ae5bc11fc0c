"""JobStore: records read back as written, each caller with its own copy, changed records seen at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from restyle.jobs.store import Job, JobStore, make_huey
from restyle.settings import Settings


def _store(root: Path) -> JobStore:
    settings = Settings(bundled=False, warmup=False, storage_root=root, video_jobs_dir=root / "no-legacy")
    return JobStore(make_huey(settings), settings)


def _job(i: int, state: str = "queued") -> Job:
    return Job(
        id=f"{i:032x}", kind="video", state=state, style="s", params={"n": i}, created_at=time.time(), input_name="in"
    )


def test_all_sees_every_change_and_hands_out_independent_copies(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for i in range(3):
        store.put(_job(i))
    first = {j.id: j for j in store.all()}
    assert {j.state for j in first.values()} == {"queued"}
    mine = first[f"{1:032x}"]
    mine.state, mine.params["n"] = "running", 99  # a caller's copy: changing it changes nothing stored
    again = {j.id: j for j in store.all()}
    assert again[mine.id].state == "queued" and again[mine.id].params == {"n": 1}
    store.put(mine)  # written: the next read parses the new bytes
    assert {j.id: j.state for j in store.all()}[mine.id] == "running"
    store.forget(f"{0:032x}")
    assert sorted(j.id for j in store.all()) == [f"{1:032x}", f"{2:032x}"]
    other = _store(tmp_path)  # another process's view of the same broker agrees
    assert {j.id: j.state for j in other.all()} == {j.id: j.state for j in store.all()}


def test_bytes_used_counts_every_file_under_the_jobs_folder(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.bytes_used() == 0
    a = store.job_dir(f"{1:032x}")
    (a / "run").mkdir(parents=True)
    (a / "in.mp4").write_bytes(b"x" * 1000)
    (a / "run" / "checkpoint.pt").write_bytes(b"y" * 234)
    assert store.bytes_used() == 1234


# -- broker timeouts, a full broker, free space (issue 26) -----------------------------------------------------
def _settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"bundled": False, "warmup": False, "storage_root": root}
    values["video_jobs_dir"] = root / "no-legacy"
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_api_processes_wait_for_the_broker_about_as_long_as_their_requests_do(tmp_path: Path) -> None:
    """A broker call a request gave up on (503 after ``broker_timeout``) must give up soon after, not hold the
    connection and SQLite's per-process lock for the 30 s a worker may wait."""
    from restyle.api.jobs import BROKER_CALL_MARGIN_S, JobQueue
    from restyle.jobs.store import REDIS_SOCKET_TIMEOUT_S, WORKER_BROKER_TIMEOUT_S

    settings = _settings(tmp_path, broker_timeout=1.5)
    assert make_huey(settings).storage._timeout == WORKER_BROKER_TIMEOUT_S  # a worker waits out a busy broker
    queue = JobQueue(settings)
    try:
        assert queue.store.storage._timeout == 1.5 + BROKER_CALL_MARGIN_S
    finally:
        queue.close()
    redis = _settings(tmp_path, broker_url="redis://127.0.0.1:1/0")  # never connected to here
    assert make_huey(redis).storage.pool.connection_kwargs["socket_timeout"] == REDIS_SOCKET_TIMEOUT_S
    assert make_huey(redis, timeout=0.7).storage.pool.connection_kwargs["socket_timeout"] == 0.7
    assert make_huey(redis, timeout=60).storage.pool.connection_kwargs["socket_timeout"] == REDIS_SOCKET_TIMEOUT_S


def test_a_full_sqlite_broker_is_storage_full_507_and_a_locked_one_unavailable_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restyle.jobs.store import BrokerFull, QueueUnavailable

    store = _store(tmp_path)

    def fail(message: str):
        def put_data(key: str, value: bytes) -> None:
            raise sqlite3.OperationalError(message)

        return put_data

    monkeypatch.setattr(store.storage, "put_data", fail("database or disk is full"))
    with pytest.raises(BrokerFull) as full:
        store.put(_job(1))
    assert full.value.http_status == 507 and isinstance(full.value, QueueUnavailable)  # workers treat it alike
    assert str(tmp_path) not in str(full.value)
    monkeypatch.setattr(store.storage, "put_data", fail("database is locked"))
    with pytest.raises(QueueUnavailable) as locked:
        store.put(_job(1))
    assert type(locked.value) is QueueUnavailable and locked.value.http_status == 503


def test_storage_problem_counts_the_incoming_upload_and_names_no_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restyle.jobs.store as store_module

    settings = _settings(tmp_path / "jobs", min_free_bytes=500_000_000)
    monkeypatch.setattr(store_module, "free_bytes", lambda root: 600_000_000)
    assert store_module.storage_problem(settings) is None
    assert store_module.storage_problem(settings, incoming=50_000_000) is None
    problem = store_module.storage_problem(settings, incoming=200_000_000)
    assert problem is not None and "600 MB free" in problem and "needs 200 MB" in problem, problem
    assert "500 MB must stay free" in problem and str(tmp_path) not in problem
    unguarded = _settings(tmp_path / "jobs", min_free_bytes=0)  # no margin: only what cannot fit at all
    assert store_module.storage_problem(unguarded, incoming=100_000_000) is None
    assert "needs 1000 MB" in (store_module.storage_problem(unguarded, incoming=10**9) or "")
    monkeypatch.setattr(store_module, "free_bytes", lambda root: 10_000_000)
    assert store_module.storage_problem(settings) == "job storage is almost full (10 MB free, at least 500 MB needed)"


def test_reserved_is_a_job_state() -> None:
    from restyle.api.submission import RESERVED as API_RESERVED
    from restyle.jobs.store import RESERVED, STATES

    assert RESERVED == API_RESERVED == "reserved" and RESERVED in STATES
