"""The small slice of ``bench/hostile.py``'s corpus through the real CLI and a real server's every upload route
(``/v1/stylize``, ``/v1/jobs/video``, ``/v1/styles``; raw and multipart): no traceback, no 5xx, JSON errors.

The full corpus (300+ files, 36 MP photos, 64-client overload) is the
benchmark; this slice (about 95 files: every category once) runs in CI.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.hostile import build_corpus
from tests.faults.servers import start, stop_server

REPO = Path(__file__).resolve().parents[2]
MIME = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif", ".tiff": "image/tiff"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_corpus(tmp_path_factory.mktemp("hostile") / "corpus", "small")


@pytest.mark.slow
def test_the_cli_survives_the_hostile_corpus_with_one_line_per_bad_file(
    corpus: list[Path], model_dir: Path, tmp_path: Path
) -> None:
    folder = corpus[0].parent
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "restyle", "stylize", str(folder), "-o", str(out), "--max-size", "128",
           "--models", str(model_dir), "--style", "mosaic"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    stdout, stderr = proc.communicate(timeout=600)
    assert "Traceback" not in stdout + stderr
    assert proc.returncode == 1, stderr[-2000:]  # some inputs failed: exit 1, the others were written
    written = sorted(out.iterdir())
    assert written and all(p.stat().st_size > 0 for p in written)
    assert not [p for p in written if p.name.startswith(".") or p.suffix not in {".jpg", ".png", ".webp"}]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    summary = stderr.strip().splitlines()[-1]
    assert f"stylized {len(written)}, kept 0 existing, failed {len(errors)} in" in summary, summary
    names = {p.name for p in corpus}
    assert all(line.split()[1].rsplit("/", 1)[-1] in names for line in errors)  # one line per bad file, naming it
    # every bomb is refused by name, before decoding
    for bomb in (p for p in corpus if p.name.startswith("bomb_") and "zlib" not in p.name):
        assert bomb.name in stderr, bomb.name


# Each upload route, and how a corpus file is sent to it (raw body or multipart, with the route's own fields).
ROUTES = {
    "/v1/stylize": ("image", {"style": "mosaic"}),
    "/v1/jobs/video": ("video", {"style": "mosaic"}),
    "/v1/styles": ("image", {}),  # a name per file: names are unique while a training is queued
}


@pytest.mark.slow
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_real_server_answers_the_hostile_corpus_on_every_upload_route_without_5xx_and_in_json(
    route: str, corpus: list[Path], job_models: Path, tmp_path: Path
) -> None:
    """Every corpus file, raw and as a multipart upload, through one upload route of a real ``restyle serve``:
    no 5xx, every error body the JSON shape (no traceback, no path), and the server still serves afterwards."""
    env = {
        "RESTYLE_WARMUP": "false",
        "RESTYLE_STYLE_BASE": "duo",  # a multi-style base: a style upload is decoded as a real one would be
        "RESTYLE_MAX_QUEUED_JOBS": "100000",  # accepted jobs stay queued (no worker): no quota in the way
        "RESTYLE_ACCESS_LOG": "false",
    }
    server = start(job_models, tmp_path, env)
    field, fields = ROUTES[route]
    statuses: Counter[int] = Counter()
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            for i, path in enumerate(corpus):
                data = path.read_bytes()
                mime = MIME.get(path.suffix, "application/octet-stream")
                own = {**fields, "name": f"hostile-{i}"} if route == "/v1/styles" else fields
                raw = client.post(route, params=own, content=data, headers={"content-type": mime})
                own = {**fields, "name": f"hostile-form-{i}"} if route == "/v1/styles" else fields
                form = client.post(route, data=own, files={field: (path.name, data, mime)})
                for how, r in (("raw", raw), ("multipart", form)):
                    statuses[r.status_code] += 1
                    assert r.status_code < 500, (route, how, path.name, r.status_code, r.text[:300])
                    if r.status_code >= 400:
                        body = r.json()
                        assert {"error", "message", "status", "request_id"} <= set(body), (how, path.name, body)
                        assert "Traceback" not in r.text and "/tmp" not in r.text and str(tmp_path) not in r.text
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
        log = "".join(server.log)
        assert "Traceback" not in log, log[-4000:]
    finally:
        stop_server(server)
    accepted = statuses[200] + statuses[202]
    assert accepted > 0 and statuses[415] > 10, statuses
    if route != "/v1/jobs/video":  # an image route refuses every bomb by its header
        assert accepted > 10 and statuses[413] >= 8, statuses
