"""The old built-in queue's SQLite records are imported once into the new queue, each one accounted for."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from restyle.jobs.migrate import import_legacy
from restyle.jobs.store import JobStore, make_huey
from restyle.settings import Settings

_OLD_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, style TEXT NOT NULL, params TEXT NOT NULL,
    created_at REAL NOT NULL, input_name TEXT NOT NULL, frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0, started_at REAL, finished_at REAL, error TEXT, runner TEXT
);
"""


def _old_queue(old: Path) -> dict[str, str]:
    """An old jobs dir: one job in each state, with the files the old queue would have left."""
    old.mkdir(parents=True)
    ids = {state: f"{i:032x}" for i, state in enumerate(["succeeded", "queued", "running", "failed", "expired"], 1)}
    ids["succeeded-gone"] = f"{9:032x}"
    db = sqlite3.connect(old / "jobs.sqlite3")
    db.executescript(_OLD_SCHEMA)
    now = time.time()
    params = json.dumps({"max_size": 64, "start": 0.0, "duration": 5.0, "stabilize": True})
    for state, job_id in ids.items():
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, 'tiny', ?, ?, 'input.bin', 3, 12, ?, ?, ?, 'host:1')",
            (
                job_id,
                state.split("-")[0],
                params,
                now - 60,
                now - 50,
                now - 40,
                "bad frame" if state == "failed" else None,
            ),
        )
    db.commit()
    db.close()
    (old / ids["succeeded"]).mkdir()
    (old / ids["succeeded"] / "result.mp4").write_bytes(b"an mp4")
    (old / ids["queued"]).mkdir()
    (old / ids["queued"] / "input.bin").write_bytes(b"a video")
    return ids


def test_old_records_are_imported_once_and_reported(tmp_path: Path, caplog) -> None:
    ids = _old_queue(tmp_path / "old")
    settings = Settings(storage_root=tmp_path / "new", video_jobs_dir=tmp_path / "old", bundled=False)
    huey = make_huey(settings)
    with caplog.at_level("WARNING", logger="restyle.jobs"):
        counts = import_legacy(settings, huey)
    assert counts == {
        "succeeded": 1,
        "requeued": 1,
        "failed (was running)": 1,
        "failed": 1,
        "expired": 1,
        "expired (result gone)": 1,
    }
    assert "imported 6 old video jobs" in caplog.text  # one line says what happened to every record
    store = JobStore(huey, settings)
    assert store.require(ids["succeeded"]).state == "succeeded"
    assert store.result_path(ids["succeeded"]).read_bytes() == b"an mp4"
    queued = store.require(ids["queued"])
    assert queued.state == "queued" and queued.delivery == 1 and store.ping() == 1  # on the queue again
    assert (store.job_dir(ids["queued"]) / "input.bin").read_bytes() == b"a video"
    assert "submit it again" in (store.require(ids["running"]).error or "")
    assert store.require(ids["failed"]).error == "bad frame"
    assert store.require(ids["succeeded-gone"]).state == "expired"
    assert import_legacy(settings, make_huey(settings)) is None  # a second worker does not import again


def test_no_old_queue_is_nothing_to_do(tmp_path: Path) -> None:
    settings = Settings(storage_root=tmp_path / "new", video_jobs_dir=tmp_path / "none", bundled=False)
    assert import_legacy(settings, make_huey(settings)) is None


def test_an_unreadable_old_database_is_reported_not_fatal(tmp_path: Path, caplog) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "jobs.sqlite3").write_bytes(b"this is not sqlite" * 100)
    settings = Settings(storage_root=tmp_path / "new", video_jobs_dir=tmp_path / "old", bundled=False)
    with caplog.at_level("ERROR", logger="restyle.jobs"):
        assert import_legacy(settings, make_huey(settings)) == {"unreadable": 1}
    assert "could not be read" in caplog.text
