"""The small slice of ``bench/hostile.py``'s corpus through the real CLI and the API: no traceback, no 5xx.

The full corpus (300+ files, 36 MP photos, 64-client overload) is the
benchmark; this slice (about 95 files: every category once) runs in CI.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.hostile import build_corpus
from restyle.api.app import create_app
from restyle.settings import Settings

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


@pytest.mark.slow
def test_the_api_answers_the_hostile_corpus_without_5xx_and_always_in_json(corpus: list[Path], model_dir: Path) -> None:
    app = create_app(Settings(models=model_dir, bundled=False, max_size=128, preview_size=64))  # type: ignore[arg-type]
    statuses: Counter[int] = Counter()
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in corpus:
            r = client.post(
                "/v1/stylize",
                content=path.read_bytes(),
                headers={"content-type": MIME.get(path.suffix, "application/octet-stream")},
            )
            statuses[r.status_code] += 1
            assert r.status_code < 500, (path.name, r.status_code, r.text[:300])
            if r.status_code != 200:
                body = r.json()
                assert {"error", "message", "status", "request_id"} <= set(body), (path.name, body)
                assert "Traceback" not in r.text and "/tmp" not in r.text
    assert statuses[200] > 10 and statuses[413] >= 4 and statuses[415] > 10, statuses
