"""``restyle worker [--processes N] [--kinds K,...]``: run queued jobs, here or on any machine sharing the broker.

``--kinds`` names the job kinds this worker takes (default: what this install
can run: ``video`` needs the runtime only, ``style`` the training stack,
``restyle[train]``); naming a kind this install cannot run is one line and
exit 2, not a worker that fails on its first job. A CPU pool
(``--kinds video``) and a GPU pool (``--kinds style``) may share one broker.

The worker reads the same ``RESTYLE_*`` settings as ``restyle serve``
(``RESTYLE_BROKER_URL``, ``RESTYLE_STORAGE_ROOT``, the models); with the
embedded SQLite default it must run on the API's machine, with Redis and a
shared storage root anywhere. SIGTERM requeues running jobs and exits;
SIGINT (Ctrl-C) lets running jobs finish first. Its worker processes die
with it, even when it is killed with SIGKILL; started by ``restyle serve``
(``--parent-pid``), it dies with the server the same way.
"""

from __future__ import annotations

import argparse
import logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker",
        help="run queued jobs (videos, new styles) in worker processes",
        description="Run jobs from the queue that `restyle serve` fills. Settings come from the same RESTYLE_* "
        "environment variables (RESTYLE_BROKER_URL, RESTYLE_STORAGE_ROOT, RESTYLE_MODELS...; see docs/api.md).",
    )
    p.add_argument("--processes", type=int, default=1, help="worker processes, each runs one job at a time (default 1)")
    p.add_argument(
        "--kinds",
        help="job kinds to take, comma-separated: video, style (default: what this install can run; style "
        "needs the training stack, restyle[train])",
    )
    p.add_argument("--broker", help="redis://HOST:PORT/DB (RESTYLE_BROKER_URL; default: the embedded SQLite queue)")
    p.add_argument("--storage-root", help="job files (RESTYLE_STORAGE_ROOT); shared by every worker and API replica")
    p.add_argument("--models", help="directory of extra .onnx styles (RESTYLE_MODELS)")
    # `restyle serve` names itself here: the worker gets SIGTERM (requeue, exit) when that process is gone.
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restyle.errors import UserError
    from restyle.jobs.kinds import parse_kinds
    from restyle.settings import settings_from

    if not 1 <= args.processes <= 64:
        raise UserError(f"--processes must be between 1 and 64, not {args.processes}")
    kinds = parse_kinds(args.kinds)  # an unknown kind, or one this install cannot run: one line, exit 2
    if args.parent_pid is not None:
        from restyle.jobs.worker import die_with_parent

        die_with_parent(args.parent_pid)
    settings = settings_from({"broker_url": args.broker, "storage_root": args.storage_root, "models": args.models})
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    from restyle.jobs.migrate import import_legacy
    from restyle.jobs.store import JobStore
    from restyle.jobs.worker import WorkerService

    service = WorkerService(settings, processes=args.processes, kinds=kinds)
    JobStore(service.huey, settings).ping()  # an unreachable broker: one line (QueueUnavailable), exit 1
    import_legacy(settings, service.huey)
    service.run()
    return 0
