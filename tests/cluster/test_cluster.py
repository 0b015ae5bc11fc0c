"""Many machines on one: a real Redis, two API replicas and two workers, as separate processes.

Proves what one shared broker buys: a job submitted to replica A is polled
and downloaded from replica B; a worker killed with ``kill -9`` mid-job
leaves the job to the other; a corrupt video fails alone; and when Redis
stops, the API answers 503 with a clear error and recovers when it is back.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.topology import Cluster, redis_binary
from tests.video.clips import corrupt_midstream, moving_scene, video_summary, write_clip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        redis_binary() is None,
        reason="redis-server not found: install the Debian package redis-server (.ci/run does) to run the cluster test",
    ),
]
VIDEO = {"content-type": "video/mp4"}
LOGS: list = []  # the cluster's log reader, for failure messages


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from tests.export.models import exported

    models = tmp_path_factory.mktemp("cluster-models")
    shutil.copy(exported("fast"), models / "tiny.onnx")
    topology = Cluster(models, tmp_path_factory.mktemp("cluster"))
    LOGS[:] = [topology.logs]
    try:
        yield topology
    finally:
        topology.close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cluster-clips")
    good = write_clip(d / "good.mp4", moving_scene(48, 64, 48), fps=12, audio=False)
    return {
        "good": good,
        "bad": corrupt_midstream(good, d / "bad.mp4"),
        "long": write_clip(d / "long.mp4", moving_scene(72, 320, 240), fps=24, audio=False),
    }


def submit(url: str, clip: Path, options: str = "") -> str:
    r = httpx.post(f"{url}/v1/jobs/video?style=tiny{options}", content=clip.read_bytes(), headers=VIDEO, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def wait(url: str, job_id: str, timeout: float = 120, until: tuple[str, ...] = ("succeeded", "failed")) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()
        if body["state"] in until:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {until}: {body}\n" + (LOGS[0]() if LOGS else ""))


def test_submit_to_one_replica_download_from_the_other(
    cluster: Cluster, clips: dict[str, Path], tmp_path: Path
) -> None:
    (_, a), (_, b) = cluster.apis
    job_id = submit(a, clips["good"])
    body = wait(b, job_id)
    assert body["state"] == "succeeded", (body, cluster.logs())
    r = httpx.get(f"{b}/v1/jobs/{job_id}/result", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(r.content)
    assert video_summary(tmp_path / "out.mp4")[0] == 48
    ready = httpx.get(f"{a}/readyz", timeout=10).json()
    assert ready["jobs"]["broker"] == "ok" and ready["jobs"]["workers"] == 2, ready


def test_a_worker_killed_mid_job_leaves_it_to_the_other(cluster: Cluster, clips: dict[str, Path]) -> None:
    (_, a), (_, b) = cluster.apis
    job_id = submit(a, clips["long"], "&max_size=160")
    deadline = time.monotonic() + 240
    while (body := httpx.get(f"{b}/v1/jobs/{job_id}", timeout=10).json())["frames_done"] < 2:
        assert body["state"] in ("queued", "running") and time.monotonic() < deadline, (body, cluster.logs())
        time.sleep(0.05)
    victim = cluster.worker_of(int(cluster.record(job_id).worker.rpartition(":")[2]))
    victim.signal(signal.SIGKILL)  # the worker service and its job process, as a crash or OOM would
    victim.popen.wait()
    body = wait(b, job_id, timeout=240)
    assert body["state"] == "succeeded" and body["attempts"] == 2 and body["frames_done"] == 72, (body, cluster.logs())
    assert sorted(p.name for p in (cluster.root / "storage" / "jobs" / job_id).iterdir()) == ["result.mp4"]
    cluster.workers.remove(victim)
    cluster.start_worker()  # back to two workers for the next tests


def test_a_corrupt_video_fails_alone_and_the_next_good_one_succeeds(cluster: Cluster, clips: dict[str, Path]) -> None:
    (_, a), (_, b) = cluster.apis
    bad = submit(a, clips["bad"])
    good = submit(b, clips["good"])
    failed = wait(a, bad)
    assert failed["state"] == "failed" and "decoded at frame" in failed["error"], failed
    assert wait(a, good)["state"] == "succeeded"


def test_redis_down_is_a_clear_503_and_the_api_recovers(cluster: Cluster, clips: dict[str, Path]) -> None:
    (_, a), (_, b) = cluster.apis
    job_id = submit(a, clips["good"])
    wait(a, job_id)
    cluster.stop_redis()
    try:
        r = httpx.get(f"{b}/v1/jobs/{job_id}", timeout=30)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "queue_unavailable" and "Redis at 127.0.0.1" in body["message"], body
        r = httpx.post(f"{a}/v1/jobs/video?style=tiny", content=clips["good"].read_bytes(), headers=VIDEO, timeout=30)
        assert r.status_code == 503 and r.json()["error"] == "queue_unavailable", r.text
        ready = httpx.get(f"{a}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["jobs"]["broker"] == "unavailable", ready.text
        assert httpx.get(f"{a}/healthz", timeout=10).status_code == 200  # the process itself is fine
    finally:
        cluster.start_redis()
    cluster.wait_ready(a, timeout=60)
    assert httpx.get(f"{b}/v1/jobs/{job_id}", timeout=10).json()["state"] == "succeeded"  # nothing was lost
    again = submit(b, clips["good"])
    assert wait(a, again)["state"] == "succeeded", cluster.logs()
