"""One-time import of the old built-in queue's jobs (``RESTYLE_VIDEO_JOBS_DIR/jobs.sqlite3``).

Nothing is dropped silently: every old record becomes a record in the new
queue (finished jobs keep their result for the rest of their retention,
queued jobs are enqueued again, jobs that were running when the old server
stopped are marked failed, as the old server itself would have done), and
one log line says how many of each, plus any it could not import and why.
A ``put_if_empty`` key makes the import happen once, however many workers start.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from huey import Huey

from restyle.jobs.store import Job, JobStore
from restyle.settings import Settings

log = logging.getLogger("restyle.jobs")


def import_legacy(settings: Settings, huey: Huey) -> Counter[str] | None:
    """Import the old SQLite job records once; returns what happened (``None``: nothing to import)."""
    old_dir = Path(settings.video_jobs_dir)
    db = old_dir / "jobs.sqlite3"
    if not db.is_file():
        return None
    store = JobStore(huey, settings)
    if not store.once(f"legacy-import:{db.resolve()}"):
        return None
    counts: Counter[str] = Counter()
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = conn.execute(
            "SELECT id, state, style, params, created_at, input_name, frames_done, frames_total, "
            "started_at, finished_at, error FROM jobs"
        ).fetchall()
        conn.close()
    except sqlite3.Error as exc:
        log.error("old video jobs in %s could not be read (%s); none imported", db, exc)
        counts["unreadable"] += 1
        return counts
    for row in rows:
        job_id, state, style, params, created, input_name, done, total, started, finished, error = row
        try:
            counts[
                _import_one(
                    store,
                    old_dir,
                    job_id,
                    state,
                    style,
                    json.loads(params),
                    created,
                    input_name,
                    done,
                    total,
                    started,
                    finished,
                    error,
                )
            ] += 1
        except Exception as exc:  # noqa: BLE001 - report and go on: one bad row must not block the rest
            log.warning("old video job %s not imported: %s", job_id, exc)
            counts["not imported"] += 1
    log.warning(
        "imported %d old video jobs from %s: %s",
        len(rows),
        db,
        ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
    )
    return counts


def _import_one(
    store: JobStore,
    old_dir: Path,
    job_id: str,
    state: str,
    style: str,
    params: dict,
    created: float,
    input_name: str,
    done: int,
    total: int,
    started: float | None,
    finished: float | None,
    error: str | None,
) -> str:
    if store.get(job_id) is not None:
        return "already present"
    job = Job(
        id=job_id,
        kind="video",
        state=state,
        style=style,
        params=params,
        created_at=created,
        input_name=input_name,
        frames_done=done,
        frames_total=total,
        started_at=started,
        finished_at=finished,
        error=error,
    )
    new_dir = store.job_dir(job_id)
    old = old_dir / job_id
    if state == "succeeded":
        if not (old / "result.mp4").is_file():
            job.state = "expired"
            store.put(job)
            return "expired (result gone)"
        new_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(old / "result.mp4", new_dir / "result.mp4")
        job.result_bytes = (new_dir / "result.mp4").stat().st_size
        store.put(job)
        return "succeeded"
    if state == "queued":
        if not (old / input_name).is_file():
            job.state, job.error, job.finished_at = "failed", "its upload was lost in the queue migration", created
            store.put(job)
            return "failed (input gone)"
        new_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(old / input_name, new_dir / input_name)
        store.enqueue(job)
        return "requeued"
    if state == "running":
        job.state, job.finished_at = "failed", finished or started or created
        job.error = "the server stopped while this job was running; submit it again"
        store.put(job)
        return "failed (was running)"
    store.put(job)  # failed or expired: kept as they were
    return state
