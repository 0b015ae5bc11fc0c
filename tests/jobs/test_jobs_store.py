"""JobStore: records read back as written, each caller with its own copy, changed records seen at once."""

from __future__ import annotations

import time
from pathlib import Path

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
