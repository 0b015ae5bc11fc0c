"""The video job: what a worker process runs for ``POST /v1/jobs/video`` (queue and state: ``restyle.jobs``).

The job is nothing but the same ``stylize_video`` the CLI uses, with the
job's own cancel event and a progress callback: the worker
(``restyle.jobs.worker``) owns retries, leases and state, and this module
owns what "stylize this upload" means. It reads the job's record and files
from the store, so it lives in the jobs layer, above the video code it calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from restyle.runtime import StylizeOptions

if TYPE_CHECKING:
    from restyle.jobs.store import Job, JobStore
    from restyle.runtime.service import StyleService
    from restyle.settings import Settings


def run_video_job(
    job: Job,
    store: JobStore,
    styles: StyleService,
    settings: Settings,
    cancel: threading.Event,
    progress: Callable[[int, int], None],
) -> int:
    """Stylize the job's upload into its result file (atomically); returns the frames written.

    Raises ``UserError`` for anything the upload is to blame for (a corrupt
    stream says at which frame), ``Cancelled`` when ``cancel`` is set.
    """
    from restyle.video.io import probe
    from restyle.video.stylize import expected_frames, stylize_video

    p = job.params
    source = store.job_dir(job.id) / job.input_name
    choice = styles.resolve(job.style)
    stylizer = styles.stylizer(choice.model)
    # Which file this run uses (its content hash), for the result's X-Model-Version: the record is saved with the
    # progress report below, and a retried run records the file it loads in turn.
    p["model_version"] = stylizer.info.version
    info = probe(source, max_pixels=settings.video_max_frame_pixels)
    progress(0, expected_frames(info, p["start"], p["duration"]))
    options = StylizeOptions(max_size=p["max_size"], style_weights=choice.style if choice.multi else None)
    result = stylize_video(
        source,
        store.result_path(job.id),
        stylizer,
        options,
        stabilize=p["stabilize"],
        start=p["start"],
        duration=p["duration"],
        progress=progress,
        cancel=cancel,
        info=info,
    )
    return result.frames
