"""The package's layers hold: ``lint-imports`` keeps every contract in ``pyproject.toml`` ([tool.importlinter]).

Part of ``make test`` (and so of CI), so an upward import or an import cycle,
at module level, inside a function or under ``TYPE_CHECKING``, fails the
suite with the broken contract's report. The layers are drawn in
``docs/architecture.md``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the dev extra (pip install -e '.[dev]', or make install)")
    env = {**os.environ, "PYTHONPATH": str(root)}  # the packages under root, not an installed copy
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_are_kept() -> None:
    run = _lint_imports(REPO)
    assert run.returncode == 0, f"lint-imports: a layer contract is broken\n{run.stdout}{run.stderr}"
    assert "0 broken" in run.stdout


def test_the_contracts_catch_an_upward_import_inside_a_function_and_a_cycle(tmp_path: Path) -> None:
    """The gate is not vacuous: a copy of the package with one lazy upward import and one cycle fails it."""
    for package in ("restyle", "bench"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.onnx", "*.jpg", "*.png"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "restyle" / "runtime" / "options.py").open("a") as f:
        f.write("\n\ndef _probe():\n    from restyle.api import cli  # noqa: F401\n")
    with (tmp_path / "restyle" / "jobs" / "store.py").open("a") as f:
        f.write("\n\ndef _probe():\n    from restyle.jobs import worker  # noqa: F401\n")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    assert "restyle.runtime.options -> restyle.api.cli" in run.stdout, run.stdout
    assert "No cycles are allowed in restyle.jobs" in run.stdout, run.stdout
    assert "restyle layers: each imports only the layers below it BROKEN" in run.stdout, run.stdout
    assert "no import cycles between siblings, at any depth BROKEN" in run.stdout, run.stdout
