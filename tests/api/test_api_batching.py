"""Micro-batching (off by default): batched results equal unbatched ones, and batches really form."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from restyle.api.inference import MicroBatcher

PARAMS = {"style": "duo:fire", "format": "png", "strength": "0.8", "preserve_color": "true"}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_batched_results_match_single_requests(make_client, sample_bytes: bytes) -> None:
    single = make_client()
    reference = single.post("/v1/stylize", params=PARAMS, content=sample_bytes, headers={"content-type": "image/jpeg"})
    assert reference.status_code == 200

    batched = make_client(batch_size=4, batch_wait_ms=500, pool_size=2, queue_size=8)
    batcher = batched.app.state.inference
    assert isinstance(batcher, MicroBatcher)
    # The four requests meet before any of them joins a batch, so no batch can leave before all four are there,
    # however slowly each one was decoded (with a timer of 500 ms alone they had to arrive within 500 ms).
    join, arrived, everyone = batcher.stylize, [], []

    async def join_together(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not everyone:
            everyone.append(asyncio.Event())
        arrived.append(1)
        if len(arrived) == 4:
            everyone[0].set()
        await asyncio.wait_for(everyone[0].wait(), 60)  # a safety net: a request that never comes fails the test
        return await join(*args, **kwargs)

    batcher.stylize = join_together

    def post(_: int):
        return batched.post("/v1/stylize", params=PARAMS, content=sample_bytes, headers={"content-type": "image/jpeg"})

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    for r in responses:
        assert r.headers["x-model"] == "duo:fire"
        assert np.abs(_pixels(r.content) - _pixels(reference.content)).max() <= 1
    metrics = batched.get("/metrics").text
    sizes = [line for line in metrics.splitlines() if line.startswith("restyle_batch_size_sum")]
    count = [line for line in metrics.splitlines() if line.startswith("restyle_batch_size_count")]
    assert float(sizes[0].split()[-1]) == 4 and float(count[0].split()[-1]) == 1  # one network call for all four
