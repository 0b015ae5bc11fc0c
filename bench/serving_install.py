"""The serving install (issue 27): ``restyle[serve,cpu]`` alone in a fresh virtual environment.

``python -m bench serving_install [--runs 3] [--write docs/benchmarks.md]`` builds the environment an API
replica or a video worker gets (no PyTorch, no reference suite), then measures what the issue's targets are
about: its size on disk (≤ 500 MB) and the cold start of ``restyle serve`` from the process's spawn to
``/readyz`` 200 (≤ 3 s on this 2-core CPU), each start with an empty home (no ONNX Runtime graph cache) and
an empty job store, as a fresh container would have.

The environment is made with ``python -m venv --without-pip`` and filled by this interpreter's pip
(``pip --python``), with the machine's own pip configuration and cache: the size is then what restyle
needs, not the installer (``python -m venv`` with pip and setuptools adds about 25 MB, which a container's
base image already has). ``tests/install/test_serving_install.py`` builds the same environment with
:func:`build` and checks that it serves photos and video jobs; the timings are this module's to report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SERVING_EXTRAS = "serve,cpu"
TARGET_MIB = 500
TARGET_START_S = 3.0
SECTION = "Serving install"
# What pip prints when neither a package index nor its cache could give it the wheels: then nothing can be
# built here (no network), which a caller reports as such instead of as a broken install.
_OFFLINE = re.compile(
    r"Could not fetch URL|NewConnectionError|Failed to establish a new connection|Network is unreachable"
    r"|Temporary failure in name resolution|Name or service not known|ConnectTimeout|Read timed out",
    re.I,
)
# The test session moves these into a temporary home (tests/conftest.py); pip must see the user's own.
_HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")


class InstallUnavailable(RuntimeError):
    """pip reached neither a package index nor a cache holding the wheels: no environment can be built here."""


def pip_environment() -> dict[str, str]:
    """This environment with the user's real home, so that pip reads its own configuration and wheel cache
    even where the caller moved ``HOME`` (the test session does); no ``PYTHON*`` variable leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in _HOME_VARIABLES and not k.startswith("PYTHON")}
    env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    return env


def project_sources(dest: Path) -> Path:
    """A copy of what the wheel is built from (``pyproject.toml``, ``README.md``, ``restyle/``).

    A copy, because setuptools writes ``build/`` and ``restyle.egg-info`` beside the sources it builds,
    and a test or benchmark must leave the checkout as it found it.
    """
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "restyle", dest / "restyle", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def build(root: Path, extras: str = SERVING_EXTRAS) -> Path:
    """A fresh virtual environment ``root/venv`` with ``restyle[extras]`` installed (a wheel, not editable).

    Raises :class:`InstallUnavailable` when pip could not get the wheels (no network and no cache), and
    ``RuntimeError`` with pip's output for any other failure (a broken requirement is a bug, not a skip).
    """
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    src = project_sources(root / "src")
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet"]
    command += ["--retries", "2", "--timeout", "60", f"{src}[{extras}]"]
    proc = subprocess.run(command, capture_output=True, text=True, env=pip_environment(), cwd=root)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        if _OFFLINE.search(output):
            lines = [line for line in output.splitlines() if line.strip()]
            raise InstallUnavailable(f"pip could not fetch the wheels (no network or cache): {lines[-1]}")
        raise RuntimeError(f"pip install '.[{extras}]' failed:\n{output[-4000:]}")
    return venv


def disk_mib(path: Path) -> float:
    """Space on disk under ``path`` in MiB, as ``du -sm`` counts it: allocated blocks, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total / 2**20


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def largest(venv: Path, count: int = 8) -> list[tuple[str, float]]:
    """The ``count`` biggest entries of the environment's site-packages, in MiB: what the space goes to."""
    site = site_packages(venv)
    sizes = [(p.name, disk_mib(p) if p.is_dir() else p.lstat().st_blocks * 512 / 2**20) for p in site.iterdir()]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def serve_environment(work: Path, **settings: str) -> dict[str, str]:
    """What a fresh container gives ``restyle serve``: an empty home (no graph cache), an empty job store,
    no ``RESTYLE_*`` or ``PYTHON*`` variable of the caller (``PYTHONPATH`` would import the checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTYLE_", "PYTHON", "XDG_"))}
    env["HOME"] = str(work / "home")
    env["RESTYLE_STORAGE_ROOT"] = str(work / "jobs")
    env.update(settings)
    (work / "home").mkdir(parents=True, exist_ok=True)
    return env


@dataclass
class Served:
    """A ``restyle serve`` process of the environment, its URL, its output and the seconds it took to be ready."""

    proc: subprocess.Popen[str]
    url: str
    ready_s: float
    log: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """SIGTERM (the server stops its job worker, requeuing running jobs), SIGKILL if it hangs."""
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def serve(venv: Path, work: Path, timeout: float = 180.0, **settings: str) -> Served:
    """Start the environment's ``restyle serve --port 0`` in ``work`` and wait for ``/readyz`` 200.

    ``ready_s`` is the cold start: from the spawn to the first 200 (models loaded and warmed up, the job
    worker alive). ``settings``: extra ``RESTYLE_*`` variables. The current directory is ``work``, so that
    neither the server nor its worker (``python -m restyle worker``) can import the checkout's package.
    """
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(venv / "bin" / "restyle"), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=serve_environment(work, **settings),
        cwd=work,
    )
    log: list[str] = []
    try:
        url = _wait_ready(proc, log, timeout)
    except BaseException:  # never leave a server behind (its worker follows it)
        proc.kill()
        proc.wait()
        raise
    return Served(proc, url, time.perf_counter() - started, log)


def _wait_ready(proc: subprocess.Popen[str], log: list[str], timeout: float) -> str:
    """The server's URL (from uvicorn's banner) once ``/readyz`` is 200; a request that times out on a busy
    machine is asked again, until ``timeout`` seconds have passed or the server exited."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    url = ""
    for line in proc.stdout:
        log.append(line)
        if m := re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line):
            url = m.group(1)
            break
    if not url:
        raise RuntimeError("restyle serve did not start:\n" + "".join(log))
    threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    with httpx.Client(base_url=url, timeout=10) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return url
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("restyle serve did not become ready:\n" + "".join(log))
            time.sleep(0.02)


def cold_start(venv: Path, work: Path) -> float:
    """One cold start of ``restyle serve`` (seconds to ``/readyz`` 200), then the server is stopped."""
    served = serve(venv, work)
    served.stop()
    return served.ready_s


def main(argv: list[str] | None = None) -> int:
    from bench.common import report

    parser = argparse.ArgumentParser(prog="python -m bench serving_install", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to measure (default 3)")
    parser.add_argument("--write", type=Path, help="merge the table into this markdown file")
    args, _ = parser.parse_known_args(argv)
    root = Path(tempfile.mkdtemp(prefix="restyle-serving-install-"))
    try:
        began = time.perf_counter()
        try:
            venv = build(root)
        except InstallUnavailable as exc:
            print(f"bench serving_install: skipped: {exc}", file=sys.stderr)
            return 0
        install_s = time.perf_counter() - began
        size, top = disk_mib(venv), largest(venv)
        load = os.getloadavg()[0]  # this shared machine's other work: the cold start depends on it
        starts = [cold_start(venv, root / f"start-{i}") for i in range(args.runs)]
        load = max(load, os.getloadavg()[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    median = statistics.median(starts)
    rows = [
        [
            "environment on disk",
            f"{size:.0f} MiB ({size * 2**20 / 1e6:.0f} MB)",
            f"≤ {TARGET_MIB} MB",
            _met(size <= TARGET_MIB),
        ],
        [
            f"`restyle serve` cold start to `/readyz` 200 ({args.runs} runs)",
            ", ".join(f"{s:.2f} s" for s in starts) + f" (median {median:.2f} s)",
            f"≤ {TARGET_START_S:.0f} s",
            _met(median <= TARGET_START_S),
        ],
    ]
    note = (
        f"`python -m bench serving_install --runs {args.runs}`: `pip install 'restyle[{SERVING_EXTRAS}]'` into a fresh "
        f"`python -m venv --without-pip` from the pip cache ({install_s:.0f} s), then `restyle serve` with the "
        "bundled styles (warm-up included), each start with an empty home and job store. Sizes as `du` counts "
        "them (MiB; `du -sm`). No PyTorch in it; pip and setuptools, which a venv with pip adds, are not counted. "
        f"Load average during the starts: up to {load:.1f} on {os.cpu_count()} cores."
    )
    extra = "What the space goes to (the largest entries of site-packages, MiB): " + ", ".join(
        f"`{name}` {mib:.0f}" for name, mib in top
    )
    report(SECTION, ["what", "measured", "target", "status"], rows, args.write, note, extra)
    return 0


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
