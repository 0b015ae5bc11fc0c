"""The style job: what a worker process runs for ``POST /v1/styles`` (queue and state: ``restyle.jobs``).

It is ``restyle train --add-style`` (the same ``TrainConfig`` with ``base``
and ``style_name``, the same ``train`` and ``export_new_style``), plus what a job
needs: the job's own cancel event as the trainer's stop event, progress in
steps, the latest sample grid kept as the job's preview, and the run folder
under the job's folder, so a job retried after its worker was killed or
stopped resumes from the run's checkpoint. The worker (``restyle.jobs.worker``)
owns retries, leases and state; this module owns what "train this style" means.
It reads the job's record and files from the store, so it lives in the jobs
layer, above the training code it calls.

On success the model is installed into the user models folder atomically
(``restyle.runtime.registry.install_model``): every API replica and worker
sees the new style on its next look-up, with no restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restyle.recipes import ADD_STYLE_DEFAULTS

if TYPE_CHECKING:
    from restyle.jobs.store import Job, JobStore
    from restyle.runtime.service import StyleService
    from restyle.settings import Settings
    from restyle.train.config import TrainConfig

log = logging.getLogger("restyle.jobs")

RUN_DIR = "run"  # the training run folder inside the job's folder
PREVIEW = "preview.png"  # the latest sample grid (photo above, the new style below)
# Checkpoint and preview cadence of a job: about every 20 s at the default sizes on a 2-core CPU (2.25 s a step),
# so a killed worker loses little and the preview visibly improves; both cost milliseconds at this size.
SNAPSHOT_EVERY = 10
SAMPLE_PHOTOS = Path(__file__).resolve().parents[2] / "assets"  # the bundled sample photo, when no folder is set


def style_config(job: Job, store: JobStore, settings: Settings, base: Path) -> TrainConfig:
    """The ``restyle train --add-style`` configuration of this job, with this machine's paths."""
    from restyle.train.add_style import base_arch
    from restyle.train.config import TrainConfig

    directory = store.job_dir(job.id)
    values: dict[str, Any] = {
        **ADD_STYLE_DEFAULTS,
        "arch": base_arch(base),
        "style_images": [directory / job.input_name],
        "base": str(base),
        "style_name": job.style,
        "data": settings.style_photos or SAMPLE_PHOTOS,
        "out": directory / RUN_DIR,
        "steps": job.params["steps"],
        "max_minutes": settings.style_minutes,
        "batch_size": settings.style_batch_size,
        "image_size": settings.style_image_size,
        "style_size": settings.style_style_size,
        "checkpoint_every": SNAPSHOT_EVERY,
        "sample_every": SNAPSHOT_EVERY,
    }
    return TrainConfig(**values)


def run_style_job(
    job: Job,
    store: JobStore,
    styles: StyleService,
    settings: Settings,
    cancel: threading.Event,
    progress: Callable[[int, int], None],
) -> int:
    """Train the job's style, export it and install it; returns the steps trained.

    Raises ``UserError`` for what the request is to blame for (its base was
    removed meanwhile, its name taken meanwhile), ``Cancelled`` when
    ``cancel`` is set, and ``KeyboardInterrupt`` when a signal stopped the
    trainer (the worker is shutting down: the job is requeued and resumes).
    """
    from restyle.atomic import atomic_write_bytes
    from restyle.errors import (
        Cancelled,  # the worker's "this run stopped on its cancel event"
        UserError,
    )
    from restyle.models.serialization import read_model_record
    from restyle.runtime.registry import ModelExists, install_model, remove_model
    from restyle.train.add_style import export_new_style
    from restyle.train.checkpoint import CHECKPOINT_NAME, PREVIOUS_NAME, load_checkpoint
    from restyle.train.loop import Hooks, TrainingInterrupted, train

    directory = store.job_dir(job.id)
    run_dir = directory / RUN_DIR
    base = styles.registry.info(job.params["base"]).path  # UnknownStyle (the job fails) if the base is gone
    cfg = style_config(job, store, settings, base)
    state = None
    if (run_dir / CHECKPOINT_NAME).is_file() or (run_dir / PREVIOUS_NAME).is_file():
        try:
            state = load_checkpoint(run_dir)
        except UserError as exc:  # both checkpoints unreadable: start again rather than fail the job
            log.warning("job %s: %s; training from the start", job.id, exc)
        else:
            job.params["resumed_at_step"] = int(state["step"])  # saved with the next progress report
            log.info("job %s: resuming style %r from step %d", job.id, job.style, state["step"])

    def keep_preview(grid: Path) -> None:
        atomic_write_bytes(directory / PREVIEW, grid.read_bytes())

    try:
        final = train(cfg, Hooks(stop=cancel, progress=progress, sample=keep_preview), state=state)
    except TrainingInterrupted:
        if cancel.is_set():
            raise Cancelled from None
        raise KeyboardInterrupt from None  # SIGTERM or Ctrl-C reached the trainer, which checkpointed
    if final is None or cancel.is_set():
        raise Cancelled
    model = export_new_style(final, exporter=settings.style_exporter)
    # A cancel or DELETE that arrives while the model is installed: checked (on the broker, not the watcher's
    # copy) before and after, so either the job ends cancelled with nothing installed, or DELETE, which
    # cancels before it removes files, finds the installed model and removes it.
    if store.cancel_requested(job.id) or cancel.is_set():
        raise Cancelled
    user_dir = settings.user_models_dir
    user_dir.mkdir(parents=True, exist_ok=True)
    try:
        install_model(user_dir, job.style, model, model.with_suffix(".md"))
    except ModelExists:
        if not _installed_by(user_dir / model.name, cfg.out):  # else: an earlier attempt of this job installed it
            raise
    if store.cancel_requested(job.id):
        remove_model(user_dir, job.style)
        raise Cancelled
    steps = int(read_model_record(final)["metadata"]["steps"])
    log.info("job %s: style %r installed (%d steps)", job.id, job.style, steps)
    return steps


def _installed_by(model: Path, run_dir: Path) -> bool:
    """Whether the installed ``model`` was trained in ``run_dir`` (its metadata records the run folder)."""
    from restyle.errors import UserError
    from restyle.runtime.model_info import read_model_info

    try:
        settings = read_model_info(model, name=model.stem, source="user").summary.get("settings", {})
    except UserError:
        return False
    return isinstance(settings, dict) and settings.get("out") == str(run_dir)
