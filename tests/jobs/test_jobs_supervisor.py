"""``restyle serve`` keeps its job worker alive, the worker's processes die with it, and ``/readyz`` tells.

* A real server: its ``restyle worker`` killed with SIGKILL mid-job; its orphaned children (Huey's
  worker and scheduler processes, the housekeeper) go away by themselves, the server starts a new
  worker, ``/readyz`` is 503 until that worker reports alive, and jobs (the interrupted one and a new
  one) succeed. Idle Huey children answer SIGTERM (they used to ignore it).
* The supervisor alone, on a stand-in command: restarted when it dies, stopped with the server.
* ``/readyz``: 503 JSON without a live supervised worker, with the storage root short of free space,
  or with the broker unreachable; never a path or a host in what it says (it needs no key).

Every wait polls a condition with a generous deadline; nothing asserts how fast it happened.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from restyle.api.app import create_app
from restyle.api.cli import JobWorkerSupervisor
from restyle.jobs.store import JobStore, make_huey
from restyle.settings import Settings

VIDEO = {"content-type": "video/mp4"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's RESTYLE_* variables must not change what these tests build."""
    for name in list(os.environ):
        if name.startswith("RESTYLE_") and not name.startswith("RESTYLE_TEST_"):
            monkeypatch.delenv(name)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0, every: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


# -- processes, from /proc ------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[1])


def _gone(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")  # a zombie has exited; init reaps it


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pid and not _gone(int(entry.name)):
            out.append(int(entry.name))
    return sorted(out)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _huey_children(worker: int) -> list[int]:
    """The forked Huey processes (worker and scheduler) of a ``restyle worker``: they share its command line."""
    return [pid for pid in _children(worker) if "restyle worker" in _cmdline(pid)]


# -- a real server -------------------------------------------------------------------------------------
@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    from tests.export.models import exported

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(exported("fast"), folder / "tiny.onnx")
    return folder


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_is_replaced_and_its_children_do_not_outlive_it(
    models_dir: Path, tmp_path: Path
) -> None:
    from tests.api.conftest import start_server, stop_server
    from tests.video.clips import moving_scene, write_clip

    long_clip = write_clip(tmp_path / "long.mp4", moving_scene(240, 320, 240), fps=24, audio=False)
    short_clip = write_clip(tmp_path / "short.mp4", moving_scene(6, 64, 48), fps=12, audio=False)
    env = {
        "RESTYLE_STORAGE_ROOT": str(tmp_path / "jobs"),
        "RESTYLE_PROVIDER": "cpu",
        "RESTYLE_THREADS": "1",
        "RESTYLE_JOB_WORKERS": "1",
    }
    server = start_server(models_dir, env, timeout=180)  # ready: the worker it started reports alive
    api = httpx.Client(base_url=server.url, timeout=30)

    def log() -> str:
        return "".join(server.log)[-4000:]

    def job(job_id: str) -> dict:
        return api.get(f"/v1/jobs/{job_id}").json()

    def finished(job_id: str) -> dict | None:
        body = job(job_id)
        return body if body["state"] in ("succeeded", "failed", "cancelled") else None

    def submit(clip: Path, max_size: int) -> str:
        r = api.post(f"/v1/jobs/video?style=tiny&max_size={max_size}", content=clip.read_bytes(), headers=VIDEO)
        assert r.status_code == 202, r.text
        return r.json()["id"]

    try:
        [worker] = wait_for(lambda: _children(server.proc.pid), "the server's job worker")  # type: ignore[misc]
        assert "restyle worker" in _cmdline(worker)
        assert api.get("/readyz").json()["jobs"]["workers"] == 1

        # Idle Huey children answer SIGTERM: they exit, and their (living) parent starts new ones.
        idle = wait_for(lambda: (c := _huey_children(worker)) and len(c) == 2 and c, "Huey's processes", 180)
        for pid in idle:  # type: ignore[union-attr]
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: all(_gone(pid) for pid in idle), "idle Huey processes to stop on SIGTERM", 60)  # type: ignore[union-attr]
        wait_for(lambda: len(_huey_children(worker)) == 2, "the worker to replace its processes", 60)

        # A job mid-run when its worker is killed with SIGKILL (no handler runs in that process).
        interrupted = submit(long_clip, 320)
        wait_for(lambda: job(interrupted)["frames_done"] >= 1, "the long job to start", 180)
        orphans = _descendants(worker)
        assert len(orphans) >= 3, orphans  # Huey's worker and scheduler, the housekeeper (+ resource tracker)
        os.kill(worker, signal.SIGKILL)

        # While no worker runs, /readyz is 503 JSON and says why, without a path or a host.
        down = wait_for(lambda: (r := api.get("/readyz")).status_code == 503 and r, "/readyz to report 503", 60)
        body = down.json()  # type: ignore[union-attr]
        assert body["ready"] is False and "job worker" in body["error"], body
        assert str(tmp_path) not in down.text  # type: ignore[union-attr]
        fresh = submit(short_clip, 64)  # accepted meanwhile: it waits for the new worker

        wait_for(lambda: all(_gone(pid) for pid in orphans), "the killed worker's children to exit", 60)
        for job_id in (interrupted, fresh):
            done = wait_for(lambda j=job_id: finished(j), f"job {job_id} to finish", 300)
            assert done["state"] == "succeeded", (done, log())  # type: ignore[index]
        assert job(interrupted)["attempts"] in (1, 2)  # handed back on SIGTERM (1), or by its lease (2)

        ready = wait_for(lambda: (r := api.get("/readyz")).status_code == 200 and r.json(), "/readyz 200", 60)
        assert ready["jobs"]["workers"] == 1, ready  # type: ignore[index]
        [replacement] = _children(server.proc.pid)
        assert replacement != worker and "restyle worker" in _cmdline(replacement)
        assert "the job worker was killed by SIGKILL; restarting it" in "".join(server.log)
    finally:
        api.close()
        survivors = _descendants(server.proc.pid)
        stop_server(server)
        # Stopping the server stops its worker and every process under it.
        wait_for(lambda: all(_gone(pid) for pid in survivors), "the server's processes to exit", 60)


# -- the supervisor alone ---------------------------------------------------------------------------------
def test_the_supervisor_restarts_a_dead_worker_and_stops_it_with_the_server(tmp_path: Path) -> None:
    settings = Settings(bundled=False, storage_root=tmp_path)
    stand_in = [sys.executable, "-c", "import time; time.sleep(600)"]
    supervisor = JobWorkerSupervisor(settings, command=stand_in)
    assert supervisor.pid is None and supervisor.worker_name is None
    supervisor.start()
    try:
        first = wait_for(lambda: supervisor.pid, "the worker to start")
        assert supervisor.worker_name == f"{socket.gethostname()}:{first}"
        os.kill(first, signal.SIGKILL)  # type: ignore[arg-type]
        second = wait_for(lambda: supervisor.pid not in (None, first) and supervisor.pid, "a new worker", 60)
        assert supervisor.restarts == 1 and not _gone(second)  # type: ignore[arg-type]
    finally:
        supervisor.stop()
    assert supervisor.pid is None and _gone(second)  # type: ignore[arg-type]


def test_the_supervisor_backs_off_while_the_worker_keeps_dying(tmp_path: Path) -> None:
    settings = Settings(bundled=False, storage_root=tmp_path)
    supervisor = JobWorkerSupervisor(settings, command=[sys.executable, "-c", "raise SystemExit(3)"])
    supervisor.FIRST_BACKOFF_S = 0.05  # type: ignore[misc]
    supervisor.MAX_BACKOFF_S = 0.2  # type: ignore[misc]
    pauses: list[float | None] = []  # what the supervisor waits between a death and the next start

    class RecordingStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            pauses.append(timeout)
            return super().wait(timeout)

    supervisor._stopping = RecordingStop()  # the event its backoff waits on (and stop() sets)
    supervisor.start()
    try:
        wait_for(lambda: supervisor.restarts >= 4, "four restarts", 120)
    finally:
        supervisor.stop()
    assert pauses[:4] == [0.05, 0.1, 0.2, 0.2]  # doubling after each death, up to MAX_BACKOFF_S
    assert supervisor._thread is not None and not supervisor._thread.is_alive()  # stopped: nothing left to restart
    assert supervisor.pid is None


# -- /readyz ----------------------------------------------------------------------------------------------
FakeSupervisor = namedtuple("FakeSupervisor", "worker_name")


def _settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"warmup": False, "storage_root": root, "video_jobs_dir": root / "no-legacy"}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def build(settings: Settings, **kwargs: object) -> TestClient:
        client = TestClient(create_app(settings, **kwargs), raise_server_exceptions=False)  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def test_readyz_wants_the_supervised_worker_alive(tmp_path: Path, client_for) -> None:
    settings = _settings(tmp_path)
    store = JobStore(make_huey(settings), settings)
    client = client_for(settings, job_supervisor=FakeSupervisor(None))  # being restarted: no worker yet
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["content-type"] == "application/json"
    assert r.json()["ready"] is False and "no job worker is running" in r.json()["error"]

    store.worker_alive("elsewhere:1", 1)  # some other worker (another machine, or the killed one's mark)
    client.app.state.job_supervisor = FakeSupervisor("here:42")  # type: ignore[attr-defined]
    assert client.get("/readyz").status_code == 503  # not the one this server runs
    store.worker_alive("here:42", 1)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["jobs"] == {"broker": "ok", "workers": 2, "pending": 0}, r.json()
    store.worker_gone("here:42")  # its housekeeper takes the mark away on the way out
    assert client.get("/readyz").status_code == 503


def test_readyz_of_a_served_app_wants_any_live_worker(tmp_path: Path, client_for) -> None:
    """``restyle serve --workers N``: the supervisor is in another process; any heartbeat will do."""
    settings = _settings(tmp_path)
    client = client_for(settings, require_job_workers=True)
    assert client.get("/readyz").status_code == 503
    JobStore(make_huey(settings), settings).worker_alive("host:7", 2)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["jobs"]["workers"] == 2


def test_readyz_without_own_workers_only_counts_them(tmp_path: Path, client_for) -> None:
    """An API replica with external workers (``--job-workers 0``), or an app built in a test."""
    r = client_for(_settings(tmp_path)).get("/readyz")
    assert r.status_code == 200 and r.json()["jobs"] == {"broker": "ok", "workers": 0, "pending": 0}


def test_readyz_is_503_when_the_storage_root_runs_out_of_space(
    tmp_path: Path, client_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restyle.jobs.store as store_module

    client = client_for(_settings(tmp_path / "jobs"))
    assert client.get("/readyz").status_code == 200
    real = shutil.disk_usage
    full = namedtuple("usage", "total used free")

    def nearly_full(path: object) -> object:
        usage = real(path)  # type: ignore[arg-type]
        return full(usage.total, usage.total - 10_000_000, 10_000_000)  # 10 MB left

    monkeypatch.setattr(store_module.shutil, "disk_usage", nearly_full)
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 503 and body["ready"] is False, body
    assert "storage is almost full" in body["error"] and "10 MB free" in body["error"], body
    assert str(tmp_path) not in r.text
    monkeypatch.setattr(store_module.shutil, "disk_usage", real)
    assert client.get("/readyz").status_code == 200


def test_readyz_never_names_the_queue_file(tmp_path: Path, client_for) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the storage root is a file: the SQLite queue cannot be opened
    r = client_for(_settings(blocker)).get("/readyz")
    body = r.json()
    assert r.status_code == 503 and body["jobs"]["broker"] == "unavailable", body
    assert body["error"] == "the job queue is unavailable"
    assert str(tmp_path) not in r.text and "sqlite" not in r.text.lower()


def test_readyz_never_names_the_redis_host(tmp_path: Path, client_for) -> None:
    settings = _settings(tmp_path, broker_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    r = client_for(settings).get("/readyz")
    assert r.status_code == 503 and r.json()["jobs"]["broker"] == "unavailable", r.text
    assert "127.0.0.1" not in r.text and "redis" not in r.text.lower()
