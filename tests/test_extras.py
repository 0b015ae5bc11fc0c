"""A command whose extra is not installed says which one, in one line, with exit 2 (issue 27).

The missing packages are made missing for real: each ``restyle`` runs in a child process whose
``sitecustomize`` puts an import finder first in ``sys.meta_path`` that refuses the named top-level
modules, so ``import torch`` raises the very ``ModuleNotFoundError`` an install without torch raises.
Nothing of restyle is replaced. (``tests/install/test_serving_install.py`` does the same in a real
serving install, in the slow suite.)
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from restyle.errors import EXTRA_OF_MODULE, missing_extra
from tests import procs

REPO = Path(__file__).resolve().parents[1]
STYLE_IMAGE = REPO / "restyle" / "styles" / "udnie.jpg"
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"

BLOCKER = '''
import os, sys

_BLOCKED = set(filter(None, os.environ.get("RESTYLE_TEST_BLOCK", "").split(",")))


class _NotInstalled:
    """Refuses the blocked top-level modules as an install without them would."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''


@pytest.fixture(scope="module")
def blocker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return folder


def restyle(blocker: Path, blocked: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m restyle ARGS`` with the modules in ``blocked`` (comma-separated) not installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(REPO)])
    env["RESTYLE_TEST_BLOCK"] = blocked
    return procs.run(
        [sys.executable, "-m", "restyle", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or REPO,
        timeout=180,
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], command: str, install: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"restyle {command}: error: "), lines[0]
    assert install in lines[0], lines[0]


@pytest.mark.parametrize(
    ("blocked", "args", "install"),
    [
        ("torch", ["train", "--style-image", str(STYLE_IMAGE), "--data", str(REPO / "restyle" / "assets")], "train"),
        ("torch", ["export", "final.pt", "-o", "model.onnx"], "train"),
        ("torch", ["gatys", "--style-image", str(STYLE_IMAGE), "--texture", "32x32", "-o", "t.png"], "reference"),
        ("matplotlib", ["viz", "filters", "-o", "f.png"], "reference"),
        ("fastapi", ["serve", "--port", "0"], "serve"),
        ("huey", ["worker"], "serve"),
    ],
    ids=["train", "export", "gatys", "viz", "serve", "worker"],
)
def test_a_command_without_its_extra_names_it_in_one_line_and_exits_2(
    blocker: Path, tmp_path: Path, blocked: str, args: list[str], install: str
) -> None:
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "run")]
    proc = restyle(blocker, blocked, *args, cwd=tmp_path)
    assert_one_line(proc, args[0], f"pip install 'restyle[{install}]'")
    assert f"{blocked} is not installed" in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing started before the message


def test_stylize_without_onnx_runtime_offers_the_cpu_and_the_gpu_build(blocker: Path, tmp_path: Path) -> None:
    proc = restyle(blocker, "onnxruntime", "stylize", str(SAMPLE), "-o", str(tmp_path))
    assert_one_line(proc, "stylize", "pip install 'restyle[cpu]'")
    assert "'restyle[gpu]'" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_core_package_missing_says_to_reinstall_restyle(blocker: Path, tmp_path: Path) -> None:
    """PyAV is the core's: `restyle video` without it is a broken install, and says so in one line."""
    proc = restyle(blocker, "av", "video", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"))
    assert_one_line(proc, "video", "pip install restyle")


def test_help_lists_a_command_whose_extra_is_missing_with_its_install_line(blocker: Path) -> None:
    proc = restyle(blocker, "torch", "--help")
    assert proc.returncode == 0, proc.stderr
    export = next(line for line in proc.stdout.splitlines() if line.strip().startswith("export"))
    assert "pip install 'restyle[train]'" in export
    assert re.search(r"^\s+stylize\s+\w", proc.stdout, re.M)  # the installed commands keep their own help


def test_a_worker_without_torch_preloads_the_video_stack_only(blocker: Path) -> None:
    """`restyle worker` in a serving install: it starts (video jobs), where it used to die importing torch."""
    script = (
        "import sys\n"
        "from restyle.jobs.kinds import installed_kinds\n"
        "from restyle.jobs.worker import _preload_job_code\n"
        "assert installed_kinds() == ('video',), installed_kinds()\n"
        "_preload_job_code(installed_kinds())\n"
        "print(sorted(m for m in ('restyle.video.stylize', 'restyle.jobs.tasks.video', 'torch') if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), str(REPO)]), RESTYLE_TEST_BLOCK="torch")
    proc = procs.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['restyle.jobs.tasks.video', 'restyle.video.stylize']"


def test_a_style_job_on_a_worker_without_torch_fails_with_the_install_line(blocker: Path, tmp_path: Path) -> None:
    """The job fails once with the extra named (a user-fixable cause), not "internal error" after retries."""
    script = f"""
import json, time
from pathlib import Path
from restyle.jobs.store import Job, JobStore, make_huey
from restyle.jobs.worker import run_delivery
from restyle.settings import Settings

settings = Settings(storage_root=Path({str(tmp_path / "jobs")!r}), job_attempts=3)
huey = make_huey(settings, run=run_delivery)
store = JobStore(huey, settings)
job = Job(id=store.new_id(), kind="style", state="queued", style="mine", params={{"base": "classics"}},
          created_at=time.time(), input_name="style.jpg", delivery=1)
store.put(job)
store.job_dir(job.id).mkdir(parents=True)
run_delivery(huey, settings, job.id, 1)
done = store.get(job.id)
print(json.dumps({{"state": done.state, "error": done.error, "attempts": done.attempts}}))
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), str(REPO)]), RESTYLE_TEST_BLOCK="torch")
    proc = procs.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, timeout=180)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["state"] == "failed", record
    assert "pip install 'restyle[train]'" in record["error"], record
    assert record["attempts"] == 1


def test_a_missing_module_no_extra_provides_is_not_disguised() -> None:
    """A bug (an import of something no extra installs) keeps its traceback: no install line would fix it."""
    with pytest.raises(ModuleNotFoundError) as caught:
        import restyle_no_such_module  # noqa: F401
    assert missing_extra(caught.value) is None


def test_a_module_that_is_installed_but_fails_inside_is_not_called_missing() -> None:
    """numpy is installed: a ModuleNotFoundError naming a part of it is a broken install, not a missing extra."""
    assert missing_extra(ModuleNotFoundError("No module named 'numpy._nope'", name="numpy._nope")) is None


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_module_table_matches_the_extras_in_pyproject() -> None:
    """Every distribution of every extra (and of the core) is reachable through the table under that extra,
    and every module in the table belongs to the extra it names: the table cannot drift from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras: dict[str, set[str]] = {"": {_requirement_name(r) for r in project["dependencies"]}}
    for extra in ("serve", "train", "reference", "cpu", "gpu"):
        extras[extra] = {_requirement_name(r) for r in project["optional-dependencies"][extra]} - {"restyle"}
    distributions = importlib.metadata.packages_distributions()  # module -> distributions, in this install

    def dists(module: str) -> set[str]:
        return {d.lower().replace("_", "-") for d in distributions.get(module, [])}

    def with_dependencies(names: set[str]) -> set[str]:  # what the named distributions require directly too
        found = set(names)
        for name in names:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found |= {_requirement_name(r) for r in importlib.metadata.requires(name) or [] if "extra ==" not in r}
        return found

    for module, extra in EXTRA_OF_MODULE.items():
        owners = extras["cpu"] | extras["gpu"] if module == "onnxruntime" else with_dependencies(extras[extra])
        assert dists(module) & owners, f"{module}: {dists(module)} not in the {extra or 'core'} requirements"
    for extra, names in extras.items():
        if extra in ("cpu", "gpu"):
            continue
        for name in names:
            modules = [m for m, ds in distributions.items() if name in {d.lower().replace("_", "-") for d in ds}]
            assert any(EXTRA_OF_MODULE.get(m) == extra for m in modules), f"{name} ({extra or 'core'}): {modules}"
