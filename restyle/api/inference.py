"""How the photo route runs its pipeline: ``DirectInference`` (the default) or ``MicroBatcher``.

The route calls ``inference.run(...)`` once, whatever the batch size: both
strategies decode, stylize through the runtime (``Stylizer.stylize`` /
``stylize_many``, the one pipeline) and encode, and return the body with
its queue and inference times. They differ only in how work meets the pool.

``DirectInference``: one pool job per request (decode, network, encode), so
one hop and no waiting for companions.

``MicroBatcher``: same-model, same-size requests share one network call.
Off by default (``batch_size=1``) because it did not pay on CPU: ONNX
Runtime already spreads one image's convolutions over the cores, so a batch
of N costs about N single runs, and the extra hops (decode, wait for
companions, network, post-process) add latency. ``bench/api_load.py
--batch-size N`` measures it again on other hardware (a GPU is where
batching usually wins); see docs/api.md for the numbers.

How: a request decodes its photo in the pool, then joins the pending group
for ``(model, height, width)``. The group is flushed when it reaches
``batch_size`` or ``batch_wait_ms`` after its first member, as *one*
admission job (so a full queue refuses the whole batch with 429) that calls
``Stylizer.stylize_many`` with each member's own ``StylizeOptions``; each
member then encodes its own result in the pool. This module only queues:
the pipeline (style weights, network, colour and strength) is the
runtime's, and photos the runtime would tile or rescale take ``stylize``
inside ``stylize_many``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restyle.api.admission import Admission
from restyle.api.metrics import Metrics
from restyle.imaging import encode_image, fit_max_size
from restyle.runtime.options import StylizeOptions
from restyle.runtime.service import Choice, StyleService


@dataclass(frozen=True)
class PhotoRequest:
    """One photo request as the route validated it: what to run and how to answer."""

    choice: Choice
    data: bytes  # the uploaded image, still encoded
    options: StylizeOptions  # its max_size is also the decode limit
    fmt: str  # output format (``restyle.imaging.normalize_format``)
    quality: int
    deadline: float  # time.monotonic() instant
    slot: Any = None  # the pool place reserved before the body was read
    disconnected: Callable[[], Awaitable[bool]] | None = None


@dataclass
class Stylized:
    body: bytes
    queue_s: float  # from submission until the network could start
    inference_s: float  # time in the stylizer


class DirectInference:
    """One pool job per request: decode, ``Stylizer.stylize``, encode."""

    def __init__(self, service: StyleService, admission: Admission, metrics: Metrics) -> None:
        self.service = service
        self.admission = admission
        self.metrics = metrics

    async def run(self, req: PhotoRequest) -> Stylized:
        submitted = time.monotonic()
        result = Stylized(b"", 0.0, 0.0)

        def work() -> bytes:
            result.queue_s = time.monotonic() - submitted
            image = self.service.decode(req.data, req.options.max_size)
            began = time.perf_counter()
            out = self.service.stylize(req.choice, image, req.options)
            result.inference_s = time.perf_counter() - began
            self.metrics.inference.labels(req.choice.model).observe(result.inference_s)
            self.metrics.batch_size.observe(1)
            return encode_image(out, req.fmt, req.quality)

        result.body = await self.admission.run(work, req.deadline, req.slot, disconnected=req.disconnected)
        return result


@dataclass
class _Group:
    images: list[np.ndarray] = field(default_factory=list)
    options: list[StylizeOptions] = field(default_factory=list)
    futures: list[asyncio.Future[np.ndarray]] = field(default_factory=list)
    deadline: float = float("inf")
    timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    """Collects photos per (model, H, W) and runs each group as one ``Stylizer.stylize_many`` call."""

    def __init__(
        self, service: StyleService, admission: Admission, metrics: Metrics, max_batch: int, wait_s: float
    ) -> None:
        self.service = service
        self.admission = admission
        self.metrics = metrics
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._groups: dict[tuple[str, int, int], _Group] = {}

    async def run(self, req: PhotoRequest) -> Stylized:
        """Decode in the pool, join the group for (model, H, W), then encode in the pool."""
        submitted = time.monotonic()
        max_size = req.options.max_size
        photo = await self.admission.run(
            lambda: fit_max_size(self.service.decode(req.data, max_size), max_size), req.deadline, req.slot
        )
        queue_s = time.monotonic() - submitted
        began = time.perf_counter()
        stylized = await self.stylize(req.choice, photo, req.options, req.deadline)
        inference_s = time.perf_counter() - began
        body = await self.admission.run(lambda: encode_image(stylized, req.fmt, req.quality), req.deadline)
        return Stylized(body, queue_s, inference_s)

    async def stylize(self, choice: Choice, photo: np.ndarray, options: StylizeOptions, deadline: float) -> np.ndarray:
        """``Stylizer.stylize(photo, options)`` for ``choice.model``, computed in a batch with its neighbours."""
        h, w = photo.shape[:2]
        key = (choice.model, h, w)
        loop = asyncio.get_running_loop()
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            group.timer = loop.call_later(self.wait_s, self._flush, key)
        future: asyncio.Future[np.ndarray] = loop.create_future()
        group.images.append(photo)
        group.options.append(options)
        group.futures.append(future)
        group.deadline = min(group.deadline, deadline)
        if len(group.images) >= self.max_batch:
            self._flush(key)
        return await future

    def _flush(self, key: tuple[str, int, int]) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        asyncio.get_running_loop().create_task(self._run(key[0], group))

    async def _run(self, model: str, group: _Group) -> None:
        self.metrics.batch_size.observe(len(group.images))

        def job() -> tuple[list[np.ndarray], float]:
            began = time.perf_counter()
            out = self.service.stylizer(model).stylize_many(group.images, group.options)
            return out, time.perf_counter() - began

        try:
            out, elapsed = await self.admission.run(job, group.deadline)
        except Exception as exc:  # Overloaded / DeadlineExceeded / runtime errors go to every member
            for future in group.futures:
                if not future.done():
                    future.set_exception(exc)
            return
        self.metrics.inference.labels(model).observe(elapsed / len(group.images))
        for i, future in enumerate(group.futures):
            if not future.done():
                future.set_result(out[i])


def make_inference(
    service: StyleService, admission: Admission, metrics: Metrics, batch_size: int, batch_wait_ms: float
) -> DirectInference | MicroBatcher:
    """The strategy the settings ask for: micro-batching only when ``batch_size > 1``."""
    if batch_size > 1:
        return MicroBatcher(service, admission, metrics, batch_size, batch_wait_ms / 1000)
    return DirectInference(service, admission, metrics)
