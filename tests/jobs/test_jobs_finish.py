"""A job's folder is tidied before its record says ``succeeded`` (issue 26).

The worker used to save ``succeeded`` first and delete the input and the ``run/`` folder after it, so a
client that listed the job's files as soon as it saw the state could still find them. Real API app and
worker threads (``tests.video.jobs_rig``) on a tiny clip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.video.clips import moving_scene, write_clip
from tests.video.jobs_rig import make, wait


@pytest.fixture
def models(tmp_path: Path) -> Path:
    from restyle.export.onnx_export import export_untrained

    folder = tmp_path / "models"
    folder.mkdir()
    export_untrained("fast", tmp_path / "mosaic.onnx", ["mosaic"]).rename(folder / "mosaic.onnx")
    return folder


def test_a_succeeded_jobs_folder_holds_only_its_result_from_the_moment_it_is_succeeded(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restyle.jobs.worker as worker

    seen: list[tuple[bool, str | None, list[str]]] = []
    remove = worker._remove_files

    def watched(store, job, keep_result: bool) -> None:  # type: ignore[no-untyped-def]
        remove(store, job, keep_result)
        current = store.get(job.id)
        files = sorted(p.name for p in store.job_dir(job.id).iterdir()) if store.job_dir(job.id).is_dir() else []
        seen.append((keep_result, current.state if current else None, files))

    monkeypatch.setattr(worker, "_remove_files", watched)
    clip = write_clip(tmp_path / "c.mp4", moving_scene(6, 64, 48), fps=12, audio=False)
    client, rig = make(models, tmp_path / "jobs")
    try:
        r = client.post("/v1/jobs/video?style=mosaic", content=clip.read_bytes(), headers={"content-type": "video/mp4"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert wait(client, job_id)["state"] == "succeeded"
        # tidied while the record still said "running": only the result was left before "succeeded" was saved
        assert seen == [(True, "running", ["result.mp4"])], seen
        assert sorted(p.name for p in rig.app.state.jobs.store.job_dir(job_id).iterdir()) == ["result.mp4"]
    finally:
        rig.close()
