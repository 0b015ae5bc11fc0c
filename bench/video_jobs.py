"""Video job overhead: a job through the API and a ``restyle worker`` process, against ``stylize_video`` alone.

    python -m bench.video_jobs [--seconds 5] [--size 320x180] [--runs 3] [--write docs/benchmarks.md]

Target (issue 13): everything a job adds beyond the stylization itself (upload, probe, queue, worker
pick-up, progress and lease writes, status polling) costs at most 10% on a 5 s clip. The worker process is
warmed by one job first (its model session is loaded once per process, like in production); direct and
job runs are interleaved so background load hits both alike; the median of ``--runs`` is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import report  # noqa: E402
from bench.video_speed import make_clip, model_for, source_frames  # noqa: E402

SECTION = "Video job overhead"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length (default 5)")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--size", default="320x180", help="WxH of the clip (default 320x180)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of each (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run each")
    parser.add_argument("--write", type=Path, help="merge the table into this markdown file")
    args, _ = parser.parse_known_args(argv)
    runs = 1 if args.quick else args.runs
    width, height = (int(v) for v in args.size.split("x"))

    from fastapi.testclient import TestClient

    from restyle.api.app import create_app
    from restyle.runtime import Registry, StylizeOptions
    from restyle.settings import Settings, child_environment
    from restyle.video.stylize import stylize_video

    work = Path(tempfile.mkdtemp(prefix="restyle-bench-jobs-"))
    models = work / "models"
    models.mkdir()
    (models / "fast.onnx").write_bytes(model_for("fast").read_bytes())
    frames = source_frames(round(args.seconds * args.fps), width, height)
    clip = make_clip(frames, work / "clip.mp4", fps=args.fps)
    threads = max(1, (os.cpu_count() or 1))
    settings = Settings(
        models=models,
        bundled=False,
        warmup=False,
        provider="cpu",
        threads=threads,
        storage_root=work / "storage",
        video_jobs_dir=work / "no-legacy",
        video_max_size=max(width, height),
    )
    env = {**child_environment(settings), "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "restyle", "worker"],
        cwd=REPO,
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = TestClient(create_app(settings))
    stylizer = Registry().resolve(str(models / "fast.onnx"), provider="cpu", threads=threads)
    options = StylizeOptions(max_size=max(width, height))
    data = clip.read_bytes()

    def direct() -> float:
        began = time.perf_counter()
        stylize_video(clip, work / "direct.mp4", stylizer, options, stabilize=True)
        return time.perf_counter() - began

    stages: dict[str, list[float]] = {"submit": [], "pick-up": [], "in worker": [], "seen": []}

    def job() -> float:
        began, wall = time.perf_counter(), time.time()
        r = client.post("/v1/jobs/video?style=fast", content=data, headers={"content-type": "video/mp4"})
        assert r.status_code == 202, r.text
        submitted = time.time()
        # A long poll, as a client that wants to know at once should: the server answers when the job ends.
        while (body := client.get(f"/v1/jobs/{r.json()['id']}?wait=30").json())["state"] in ("queued", "running"):
            pass
        assert body["state"] == "succeeded", body
        seen = time.time()
        # Where the time went, from the job record's own clock (same machine, so the clocks agree).
        for name, value in (
            ("submit", submitted - wall),  # upload, probe, record, enqueue
            ("pick-up", body["started_at"] - body["created_at"]),  # waiting for a worker to take it
            ("in worker", body["finished_at"] - body["started_at"]),  # the job itself, stylization included
            ("seen", seen - body["finished_at"]),  # until the poll saw it
        ):
            stages[name].append(value)
        return time.perf_counter() - began

    try:
        job()  # warm the worker process (model session) and the queue file
        direct()  # and this process's session
        direct_s, job_s = [], []
        for _ in range(runs):
            direct_s.append(direct())
            job_s.append(job())
    finally:
        worker.terminate()
        worker.wait(30)
    d, j = statistics.median(direct_s), statistics.median(job_s)
    overhead = j / d - 1
    rows = [
        [
            f"{args.seconds:g} s {width}x{height} @ {args.fps} fps, stabilized",
            f"{d:.2f}",
            f"{j:.2f}",
            f"{overhead:+.1%}",
            "yes" if overhead <= 0.10 else "no",
        ]
    ]
    print(f"direct {[round(x, 2) for x in direct_s]} s, job {[round(x, 2) for x in job_s]} s: overhead {overhead:+.1%}")
    breakdown = {k: statistics.median(v[-runs:]) for k, v in stages.items()}
    breakdown["in worker beyond stylize_video"] = breakdown["in worker"] - d
    print("  ".join(f"{k} {v:.2f} s" for k, v in breakdown.items()))
    report(
        SECTION,
        ["clip", "stylize_video (s)", "job via API + worker (s)", "overhead", "<= 10%"],
        rows,
        args.write,
        note=f"{platform.processor() or platform.machine()}, CPU provider, {threads} threads, median of {runs} "
        "interleaved runs; the job time runs from POST to the answer that says `succeeded` (a long poll, "
        "`GET /v1/jobs/{id}?wait=30`), "
        "on the embedded SQLite queue with one `restyle worker` process warmed by one job. Where a job's time "
        "goes (medians, s): " + ", ".join(f"{k} {v:.2f}" for k, v in breakdown.items()) + ".",
    )
    return 0 if overhead <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
