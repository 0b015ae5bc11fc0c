"""A style job trains with the ``--add-style`` recipe and the server's own limits (``RESTYLE_STYLE_*``)."""

from __future__ import annotations

import time
from pathlib import Path

from restyle.jobs.store import Job, JobStore, make_huey
from restyle.jobs.tasks.style import style_config
from restyle.jobs.worker import run_delivery
from restyle.recipes import ADD_STYLE_DEFAULTS
from restyle.settings import Settings

BASE = Path(__file__).resolve().parents[2] / "restyle" / "styles" / "classics.onnx"


def test_a_style_job_takes_its_steps_from_the_request_and_its_time_limit_from_the_server(tmp_path: Path) -> None:
    assert Settings(storage_root=tmp_path).style_minutes == ADD_STYLE_DEFAULTS["max_minutes"] > 0
    settings = Settings(storage_root=tmp_path / "jobs", style_minutes=0.5)
    store = JobStore(make_huey(settings, run=run_delivery), settings)
    job = Job(id=store.new_id(), kind="style", state="queued", style="mine", params={"base": "classics", "steps": 7},
              created_at=time.time(), input_name="style.jpg", delivery=1)  # fmt: skip
    cfg = style_config(job, store, settings, BASE)
    assert (cfg.steps, cfg.max_minutes, cfg.style_name, cfg.arch) == (7, 0.5, "mine", "lite")
    assert cfg.style_weight == ADD_STYLE_DEFAULTS["style_weight"] and cfg.base == str(BASE)
