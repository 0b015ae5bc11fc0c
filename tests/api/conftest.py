"""Fixtures for the API tests: real ONNX models in a temp dir, apps built from typed settings, a real server.

The models are exported once per session from a random (untrained) network:
the API does not care what the pictures look like, only that a real model
runs through the real runtime.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from restyle.api.app import create_app
from restyle.settings import Settings
from tests import procs

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's or CI's RESTYLE_* variables must not change what the tests build (nor leak out of them)."""
    for name in list(os.environ):
        if name.startswith("RESTYLE_") and not name.startswith("RESTYLE_TEST_"):
            monkeypatch.delenv(name)
    yield
    for name in list(os.environ):  # `restyle serve` writes its settings back into the environment
        if name.startswith("RESTYLE_") and not name.startswith("RESTYLE_TEST_"):
            del os.environ[name]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``duo`` (one model holding two styles: ink, fire) and ``mosaic`` (a single-style model): three styles."""
    from restyle.export.onnx_export import export_untrained

    root = tmp_path_factory.mktemp("api-models")
    work = tmp_path_factory.mktemp("api-train")  # the checkpoints stay out of the models directory
    for name, styles, seed in (("duo", ["ink", "fire"], 0), ("mosaic", ["mosaic"], 1)):
        export_untrained("fast", work / f"{name}.onnx", styles, seed=seed).rename(root / f"{name}.onnx")
    return root


def export_style_base(out: Path, styles: list[str], work: Path, seed: int = 0) -> Path:
    """A multi-style ``fast`` base for ``--add-style`` / ``POST /v1/styles``: distinct per-style norms, as a
    trained base has (an untrained network's are all alike), exported with the quick torchscript exporter."""
    import torch

    from restyle.export.onnx_export import export_onnx
    from restyle.models.serialization import save_model
    from restyle.models.transformer import build_network
    from restyle.train.add_style import is_norm_parameter

    torch.manual_seed(seed)
    net = build_network("fast", len(styles))
    with torch.no_grad():
        for param_name, p in net.named_parameters():
            if is_norm_parameter(param_name):
                p.add_(0.1 * torch.randn_like(p))
    final = save_model(net, work / f"{out.stem}.pt", styles, {"note": "test base"})
    export_onnx(final, out, exporter="torchscript")
    return out


@pytest.fixture(scope="session")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture
def make_settings(models_dir: Path, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {"models": models_dir, "bundled": False, "max_size": 128, "preview_size": 64}
        values["storage_root"] = tmp_path / "jobs"  # /readyz opens the job queue: keep it out of ~/.cache
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


def wait_ready(client: TestClient | httpx.Client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("server did not become ready")


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Build an app from settings overrides and return a started, ready TestClient."""
    clients: list[TestClient] = []

    def build(**overrides: object) -> TestClient:
        app: FastAPI = create_app(make_settings(**overrides))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        wait_ready(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


class Server:
    """A real ``restyle serve`` process on a free loopback port."""

    def __init__(self, proc: subprocess.Popen[str], url: str, log: list[str]):
        self.proc, self.url, self.log = proc, url, log


def start_server(
    models_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
    *,
    preexec_fn: Callable[[], None] | None = None,
    ready: bool = True,
) -> Server:
    """Start ``python -m restyle serve --port 0`` and read the bound port from uvicorn's banner.

    ``preexec_fn`` runs in the server process before it starts (a resource limit); ``ready``: wait for
    ``/readyz`` 200, else only for ``/healthz`` (a server that must report itself not ready).
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RESTYLE_")}
    full_env.update({"RESTYLE_BUNDLED": "false", "RESTYLE_MAX_SIZE": "128", "RESTYLE_PREVIEW_SIZE": "64"})
    full_env["RESTYLE_STORAGE_ROOT"] = tempfile.mkdtemp(prefix="restyle-test-jobs-")  # the job queue's files
    full_env["RESTYLE_JOB_WORKERS"] = "0"  # photo tests: no embedded job worker competing for the CPU
    full_env.update(env or {})
    proc = procs.popen(
        [sys.executable, "-m", "restyle", "serve", "--port", "0", "--models", str(models_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=REPO,
        preexec_fn=preexec_fn,
    )
    log: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        log.append(line)
        match = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
        if match:
            server = Server(proc, match.group(1), log)
            # Keep draining the log so the pipe never fills and blocks the server.
            threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
            with httpx.Client(base_url=server.url, timeout=30) as c:
                if ready:
                    wait_ready(c, timeout=max(1.0, deadline - time.monotonic()))
                else:
                    assert c.get("/healthz").status_code == 200
            return server
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(log))


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
