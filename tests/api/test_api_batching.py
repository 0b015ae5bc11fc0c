"""Micro-batching (off by default): batched results equal unbatched ones, and batches really form."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

PARAMS = {"style": "duo:fire", "format": "png", "strength": "0.8", "preserve_color": "true"}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_batched_results_match_single_requests(make_client, sample_bytes: bytes) -> None:
    single = make_client()
    reference = single.post("/v1/stylize", params=PARAMS, content=sample_bytes, headers={"content-type": "image/jpeg"})
    assert reference.status_code == 200

    batched = make_client(batch_size=4, batch_wait_ms=500, pool_size=2, queue_size=8)

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
    assert float(sizes[0].split()[-1]) == 4 and float(count[0].split()[-1]) < 4  # at least one real batch
