"""restyle.jobs: long-running jobs (videos, and new styles trained from an image) on a Huey queue.

* ``store``: the queue (SQLite embedded, or Redis) and the shared job records, leases and claim keys.
* ``worker``: the tasks (``video``, ``style``), lease renewal, cancel, retries, the sweeper and the worker service.
* ``cli``: ``restyle worker``.
* ``migrate``: one-time import of the old built-in queue's SQLite records.
"""
