"""The serving install (issue 27): ``restyle[serve,cpu]`` alone, in a fresh virtual environment, serves.

One environment for the module (``bench.serving_install.build``: pip with the machine's own configuration
and wheel cache; skipped, with pip's reason, only when pip can fetch nothing at all), one ``restyle serve``
from it with the bundled styles and its embedded job worker. Behaviour only: the environment's size and
the server's cold start are printed here and reported by ``python -m bench serving_install``.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from bench.serving_install import InstallUnavailable, Served, build, disk_mib, serve, serve_environment
from tests.video.clips import moving_scene, write_clip

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"
STYLE_IMAGE = REPO / "restyle" / "styles" / "udnie.jpg"
JOB_DEADLINE_S = 300.0  # a hang guard for the video job, not a timing check
FINISHED = {"succeeded", "failed", "cancelled", "expired"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-install")


@pytest.fixture(scope="module")
def venv(root: Path) -> Path:
    try:
        venv = build(root)
    except InstallUnavailable as exc:
        pytest.skip(str(exc))
    print(f"\nserving install: {disk_mib(venv):.0f} MiB on disk")
    return venv


@pytest.fixture(scope="module")
def server(venv: Path, root: Path) -> Iterator[Served]:
    served = serve(venv, root / "serve", timeout=600)  # a hang guard on a busy machine, not a timing check
    print(f"restyle serve from the serving install: /readyz 200 after {served.ready_s:.2f} s")
    yield served
    served.stop()


def in_venv(venv: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the serving install, outside the checkout and with none of its environment."""
    work = root / "cli"
    work.mkdir(exist_ok=True)
    return subprocess.run(
        args, capture_output=True, text=True, env=serve_environment(work), cwd=work, timeout=300, check=False
    )


def test_the_serving_install_has_no_torch_and_one_onnx_runtime(venv: Path, root: Path) -> None:
    script = (
        "import importlib.metadata as md, importlib.util as u\n"
        "print(u.find_spec('torch') is None, u.find_spec('fastapi') is not None)\n"
        "print(md.version('onnxruntime').split('.')[:2])\n"
        "try:\n    md.version('onnxruntime-gpu')\nexcept md.PackageNotFoundError:\n    print('no gpu build')\n"
    )
    proc = in_venv(venv, root, str(venv / "bin" / "python"), "-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["True True", "['1', '31']", "no gpu build"]


def test_the_serving_install_says_which_extra_training_needs(venv: Path, root: Path) -> None:
    proc = in_venv(
        venv, root, str(venv / "bin" / "restyle"), "train", "--style-image", str(STYLE_IMAGE), "--data", str(REPO)
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "restyle train: error: this needs the 'train' extra (torch is not installed): pip install 'restyle[train]'"
    ]
    helped = in_venv(venv, root, str(venv / "bin" / "restyle"), "--help")
    assert helped.returncode == 0, helped.stderr
    export = next(line for line in helped.stdout.splitlines() if line.strip().startswith("export"))
    assert "(not installed: pip install 'restyle[train]')" in export


def test_the_serving_install_stylizes_a_photo(server: Served) -> None:
    response = httpx.post(
        f"{server.url}/v1/stylize",
        files={"image": ("sample.jpg", SAMPLE.read_bytes(), "image/jpeg")},
        data={"max_size": "256"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert max(image.size) == 256 and response.headers["x-model"]


def test_the_serving_install_runs_a_video_job_to_the_end(server: Served, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", moving_scene(12, 96, 64), fps=12)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        submitted = client.post("/v1/jobs/video", content=clip.read_bytes(), headers={"content-type": "video/mp4"})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + JOB_DEADLINE_S
        job = submitted.json()
        while job["state"] not in FINISHED:
            assert time.monotonic() < deadline, f"video job still {job['state']}:\n{''.join(server.log[-40:])}"
            time.sleep(0.2)
            job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] == "succeeded", job
        result = client.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    out = tmp_path / "result.mp4"
    out.write_bytes(result.content)
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 12
    assert (frames[0].width, frames[0].height) == (96, 64)


def test_the_serving_install_refuses_new_styles_with_a_clear_503(server: Served) -> None:
    """No worker here can train (no torch): POST /v1/styles says so at once instead of queueing a job."""
    response = httpx.post(
        f"{server.url}/v1/styles",
        files={"image": ("udnie.jpg", STYLE_IMAGE.read_bytes(), "image/jpeg")},
        data={"name": "mine"},
        timeout=60,
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["message"].lower()
    assert "train" in message and "worker" in message, message
