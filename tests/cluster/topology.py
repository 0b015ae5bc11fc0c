"""A many-machine topology on one machine: a real redis-server, API replicas and workers as processes.

Used by ``tests/cluster`` and by ``make cluster`` (``python -m tests.cluster.topology``), so what a
person tries is what CI proves. Every process is its own session, so a test can ``kill -9`` a whole worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests import procs

REPO = Path(__file__).resolve().parents[2]


def redis_binary() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process with its output kept (for failure messages)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.name = name
        self.log: list[str] = []
        self.popen = procs.popen(
            args,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.log.append(line)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 30) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait()

    def tail(self, n: int = 30) -> str:
        return f"--- {self.name} ---\n" + "".join(self.log[-n:])


class Cluster:
    """redis-server + ``apis`` API replicas (``--job-workers 0``) + ``workers`` ``restyle worker`` processes."""

    def __init__(
        self,
        models_dir: Path | None,
        root: Path,
        apis: int = 2,
        workers: int = 2,
        lease: float = 3.0,
        ports: list[int] | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        self.root = root
        self.redis_port = free_port()
        self.redis_dir = root / "redis"
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RESTYLE_")}
        self.env.update(
            {
                "RESTYLE_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "RESTYLE_STORAGE_ROOT": str(root / "storage"),
                "RESTYLE_BUNDLED": "false",
                "RESTYLE_PROVIDER": "cpu",
                "RESTYLE_THREADS": "1",
                "RESTYLE_JOB_LEASE": str(lease),
                "RESTYLE_JOB_WORKERS": "0",
                "RESTYLE_VIDEO_JOBS_DIR": str(root / "no-legacy"),
                "PYTHONPATH": str(REPO),
                **(extra_env or {}),
            }
        )
        if models_dir is not None:
            self.env["RESTYLE_MODELS"] = str(models_dir)
        self.redis: Proc | None = None
        self.apis: list[tuple[Proc, str]] = []
        self.workers: list[Proc] = []
        try:
            self.start_redis()
            ports = ports or [free_port() for _ in range(apis)]
            for i, port in enumerate(ports):
                self.apis.append(self._start_api(i, port))
            for _ in range(workers):
                self.start_worker()
            for _, url in self.apis:
                self.wait_ready(url)
        except BaseException:
            self.close()  # never leave processes behind when the topology cannot start
            raise

    # -- redis --------------------------------------------------------------------------------------
    def start_redis(self) -> None:
        binary = redis_binary()
        assert binary, "redis-server not found"
        # Append-only file, so a stopped and restarted Redis still holds the jobs (as a real deployment would).
        args = [
            binary,
            "--port",
            str(self.redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(self.redis_dir),
            "--protected-mode",
            "no",
        ]
        self.redis = Proc("redis", args, self.env)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert self.redis.alive() and time.monotonic() < deadline, self.redis.tail()
            time.sleep(0.1)

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()

    # -- API replicas and workers -------------------------------------------------------------------
    def _start_api(self, i: int, port: int) -> tuple[Proc, str]:
        proc = Proc(f"api-{i}", [sys.executable, "-m", "restyle", "serve", "--port", str(port)], self.env)
        return proc, f"http://127.0.0.1:{port}"

    def start_worker(self) -> Proc:
        proc = Proc(f"worker-{len(self.workers)}", [sys.executable, "-m", "restyle", "worker"], self.env)
        self.workers.append(proc)
        return proc

    def record(self, job_id: str):  # -> restyle.jobs.store.Job: what the workers wrote, read as an operator would
        from restyle.jobs.store import JobStore, make_huey
        from restyle.settings import Settings

        settings = Settings(broker_url=self.env["RESTYLE_BROKER_URL"], storage_root=self.root / "storage")
        return JobStore(make_huey(settings), settings).require(job_id)

    def worker_of(self, pid: int) -> Proc:
        """The worker service a job process (``host:pid`` on the job record) belongs to."""
        group = os.getpgid(pid)
        return next(w for w in self.workers if w.popen.pid == group)

    def wait_ready(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{url} not ready\n" + self.logs())

    def logs(self) -> str:
        procs = [p for p in [self.redis, *(a for a, _ in self.apis), *self.workers] if p is not None]
        return "\n".join(p.tail() for p in procs)

    def close(self) -> None:
        for proc in [*self.workers, *(a for a, _ in self.apis)]:
            proc.stop()
        if self.redis is not None:
            self.redis.stop()


def main() -> int:
    """``make cluster``: Redis, API replicas on :8001 and :8002, two workers, until Ctrl-C."""
    models = os.environ.get("CLUSTER_MODELS")
    root = Path(os.environ.get("CLUSTER_DIR") or tempfile.mkdtemp(prefix="restyle-cluster-"))
    if redis_binary() is None:
        print(
            "make cluster: redis-server not found; install it (Debian: apt-get install redis-server)", file=sys.stderr
        )
        return 2
    # Without CLUSTER_MODELS: the styles bundled with the package, on the best provider available.
    extra = {"RESTYLE_BUNDLED": "true", "RESTYLE_PROVIDER": "auto", "RESTYLE_THREADS": "0"}
    cluster = Cluster(
        Path(models) if models else None,
        root,
        ports=[8001, 8002],
        lease=30.0,
        extra_env=extra if not models else None,
    )
    print(f"redis://127.0.0.1:{cluster.redis_port}/0, storage {root / 'storage'}")
    for proc, url in cluster.apis:
        print(f"API replica {proc.name}: {url}")
    print(
        f"{len(cluster.workers)} workers. Try: curl -X POST --data-binary @clip.mp4 -H 'content-type: video/mp4' "
        "http://127.0.0.1:8001/v1/jobs/video, then GET the job on :8002. Ctrl-C stops everything."
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
