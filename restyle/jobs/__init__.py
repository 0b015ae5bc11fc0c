"""restyle.jobs: long-running jobs (videos, and new styles trained from an image) on a Huey queue.

* ``store``: the queues (SQLite embedded, or Redis; one per job kind), their task names (``make_huey``), and
  the shared job records, leases, claim keys and worker heartbeats.
* ``kinds``: the job kinds, what each needs installed, and whether a kind has a worker to take it.
* ``worker``: what a task does (``run_delivery``: lease renewal, cancel, retries), the sweeper and the worker service.
* ``tasks``: each kind's work (``video``, ``style``).
* ``cli``: ``restyle worker [--kinds video,style]``.
* ``migrate``: one-time import of the old built-in queue's SQLite records.
"""
