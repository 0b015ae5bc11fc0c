"""An API app plus job workers on one storage root, for the video-job tests.

Workers run as threads here (``WorkerService.start_threads``: the same task
code Huey's process workers run) so most tests stay fast; the tests about
processes (``kill -9``, ``restyle worker``) start real worker processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from restyle.api.app import create_app
from restyle.jobs.worker import WorkerService
from restyle.settings import Settings, child_environment
from tests import procs

REPO = Path(__file__).resolve().parents[2]


def job_settings(models_dir: Path, root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "models": models_dir,
        "bundled": False,
        "warmup": False,
        "provider": "cpu",
        "threads": 1,
        "storage_root": root,
        "video_jobs_dir": root / "no-legacy",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class Rig:
    """``client`` talks to the app; ``workers`` run its jobs (None: no worker, jobs stay queued)."""

    def __init__(self, settings: Settings, workers: int = 1):
        self.settings = settings
        self.app = create_app(settings)
        self.client = TestClient(self.app)
        self.workers: WorkerService | None = None
        if workers:
            self.workers = WorkerService(settings, processes=workers)
            self.workers.start_threads()

    def close(self) -> None:
        if self.workers is not None:
            self.workers.stop()
        self.app.state.jobs.close()


def make(models_dir: Path, root: Path, workers: int = 1, **overrides: object) -> tuple[TestClient, Rig]:
    rig = Rig(job_settings(models_dir, root, **overrides), workers)
    return rig.client, rig


def wait(
    client: TestClient,
    job_id: str,
    timeout: float = 60,
    until: tuple[str, ...] = ("succeeded", "failed"),
    log: Path | None = None,
) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["state"] in until:
            return body
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"job {job_id} did not reach {until}: {body}\n{tail}")


def wait_frames(client: TestClient, job_id: str, frames: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (body := client.get(f"/v1/jobs/{job_id}").json())["frames_done"] < frames or body["state"] != "running":
        assert body["state"] in ("queued", "running") and time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def worker_process(settings: Settings, log: Path, processes: int = 1) -> subprocess.Popen:
    """A real ``restyle worker`` (its own session, so a test can kill its whole process group); output to ``log``."""
    env = {**child_environment(settings), "PYTHONPATH": str(REPO)}
    with open(log, "ab") as out:
        return procs.popen(
            [sys.executable, "-m", "restyle", "worker", "--processes", str(processes)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
