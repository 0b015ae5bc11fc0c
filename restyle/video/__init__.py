"""restyle.video: stylize video files, the live camera feed and video jobs for the API.

* ``io``: PyAV decode (rotation, timestamps) and H.264/yuv420p MP4 encode with the audio copied.
* ``pipeline``: decode -> stylize -> stabilize -> encode threads joined by bounded queues.
* ``stylize.stylize_video``: the one entry point (CLI, job worker, benchmarks); atomic output.
* ``flow``/``stabilize``: DIS optical flow, warping, consistency mask, the runtime stabilizer.
* ``metrics``: warping error (Lai et al. 2018) and the VGG style loss, for ``bench/video_quality.py``.
* ``live``: ``restyle live``; ``jobs``: the video job a worker runs (queue: ``restyle.jobs``; HTTP: ``restyle.api.jobs``).
"""
