"""What each job kind does, run by a worker process (``restyle.jobs.worker``) with its cancel event and progress.

* ``video``: ``POST /v1/jobs/video``, the same ``stylize_video`` as ``restyle video``.
* ``style``: ``POST /v1/styles``, ``restyle train --add-style`` plus the job's preview, resume and install.

They sit in the jobs layer because they read the job's record and files from the store; the video and
training code they call knows nothing of jobs.
"""
