"""The gallery's table, command line and page writer, checked without the cost of its optimization figures."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from restyle.errors import UserError
from restyle.reference import budget as bd
from restyle.reference.gallery import ENTRIES, KEYS, Caption, renderers, select
from restyle.reference.gallery.__main__ import parse_args
from restyle.reference.gallery.prose import PYTHON_API
from restyle.reference.gallery.record import load_record, markdown, record_figure, write_page

ROOT = Path(__file__).resolve().parents[2]


def test_entry_table_is_valid():
    """Unique keys (they name the files) and titles (they name the sections), each key a plain file name, and
    every entry drawn by its own module-level renderer taking (run, out)."""
    assert len(set(KEYS)) == len(KEYS) == len(ENTRIES) == 15
    assert len({e.title for e in ENTRIES}) == len(ENTRIES)
    for e in ENTRIES:
        assert e.key.replace("-", "").isalpha() and e.key.islower(), e.key
        assert getattr(renderers, e.render.__name__) is e.render, e.key
        assert e.render.__name__ == "render_" + e.key.replace("-", "_")
        assert list(inspect.signature(e.render).parameters) == ["run", "out"]


def test_only_selects_in_page_order_and_rejects_unknown_keys():
    assert [e.key for e in select({"texture", "gatys"})] == ["gatys", "texture"]
    assert select(None) == list(ENTRIES)
    with pytest.raises(UserError, match="unknown figure.*nope"):
        select({"gatys", "nope"})


def test_command_line_keeps_the_makefile_flags():
    """``make gallery`` passes ``--out docs`` and ``GALLERY_ARGS`` such as ``--profile preview`` or
    ``--only gatys,texture``; ``--quick`` is ``--profile preview``."""
    args = parse_args(["--out", "docs", "--profile", "preview", "--only", "gatys, texture,"])
    assert args.out == Path("docs") and args.profile is bd.PREVIEW and args.only == {"gatys", "texture"}
    args = parse_args(["--quick"])
    assert args.profile is bd.PREVIEW and args.only is None
    assert parse_args([]).profile is bd.PUBLICATION


def _gallery(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "restyle.reference.gallery", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_python_m_gallery_renders_one_entry(tmp_path):
    """The Makefile's command, on its cheapest figure (weights only): the PNG, its record and the page."""
    done = _gallery("--profile", "preview", "--only", "filters", "--out", "out", "--threads", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert done.stdout.strip() == str(Path("out") / "reference.md")
    assert (out / "reference" / "filters.png").stat().st_size > 10_000
    figures = json.loads((out / "reference" / "gallery.json").read_text())["figures"]
    assert list(figures) == ["filters"] and figures["filters"]["profile"] == "preview"
    page = (out / "reference.md").read_text()
    assert "![First-layer filters](reference/filters.png)" in page and "Not the published gallery" in page


def test_python_m_gallery_rejects_an_unknown_key_before_any_work(tmp_path):
    done = _gallery("--only", "filters,nope", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2 and "unknown figure(s): nope" in done.stderr
    assert not (tmp_path / "out").exists()


def _caption(note: str = "") -> Caption:
    return Caption("a method", "a paper", "a network", "a budget", "`a command`", note)


def _measured(profile: str, wall: float) -> dict:
    return {"profile": profile, "wall_seconds": wall, "cpu_seconds": wall, "threads": 1, "machine": "m"}


def test_record_keeps_other_figures_and_the_page_follows_the_record(tmp_path):
    order = ("b", "a")
    record_figure(tmp_path, "a", "Figure A", _caption("A's note."), _measured("publication", 60), order)
    record_figure(tmp_path, "b", "Figure B", _caption(), _measured("publication", 60), order)
    record_figure(tmp_path, "a", "Figure A", _caption("A again."), _measured("publication", 120), order)
    figures = load_record(tmp_path)
    assert list(figures) == ["b", "a"] and figures["a"]["note"] == "A again." and figures["a"]["wall_seconds"] == 120

    page = write_page(tmp_path, order).read_text()
    assert page == markdown(figures, order)
    assert page.index("## Figure B") < page.index("## Figure A") < page.index("## Python API")
    assert "3.0 minutes" in page and "A again." in page and "A's note." not in page
    assert "Not the published gallery" not in page
    record_figure(tmp_path, "b", "Figure B", _caption(), _measured("preview", 1), order)
    assert "Not the published gallery" in write_page(tmp_path, order).read_text()


def test_published_page_is_the_one_written_from_its_record():
    """docs/reference.md is the writer's output for docs/reference/gallery.json (rebuild: ``record.write_page``)."""
    figures = load_record(ROOT / "docs")
    assert set(figures) == set(KEYS)
    assert (ROOT / "docs" / "reference.md").read_text() == markdown(figures, KEYS)


def test_python_api_example_names_what_exists():
    """Every name the page's code example imports exists, so the example cannot drift from the API by a rename."""
    code = PYTHON_API.split("```python\n")[2].split("```")[0]
    imports = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ImportFrom)]
    assert len(imports) >= 5
    for node in imports:
        module = importlib.import_module(node.module)
        for alias in node.names:
            assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
