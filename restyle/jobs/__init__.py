"""restyle.jobs: long-running jobs (videos, and new styles trained from an image) on a Huey queue.

* ``store``: the queue (SQLite embedded, or Redis), its task names (``make_huey``), and the shared job records,
  leases and claim keys.
* ``worker``: what a task does (``run_delivery``: lease renewal, cancel, retries), the sweeper and the worker service.
* ``tasks``: each kind's work (``video``, ``style``).
* ``cli``: ``restyle worker``.
* ``migrate``: one-time import of the old built-in queue's SQLite records.
"""
