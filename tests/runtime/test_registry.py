"""Registry: the catalogue hands its cached model description to the sessions, and rescans only changed folders."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from restyle.runtime import Registry
from restyle.runtime.registry import RACY_NS
from tests.export.models import exported


def _age_folder(folder: Path) -> int:
    """Set the folder's mtime well outside the racy window; returns it (ns)."""
    old = time.time_ns() - 10 * RACY_NS
    os.utime(folder, ns=(old, old))
    return old


def test_a_session_carries_the_registrys_name_and_source(tmp_path: Path) -> None:
    shutil.copy(exported(), tmp_path / "duo.onnx")
    reg = Registry(tmp_path, bundled=False)
    stylizer = reg.get("duo", provider="cpu")
    assert stylizer.info is reg.info("duo")  # one description, read once, not re-read by the session
    assert stylizer.info.source == "user" and stylizer.info.name == "duo"
    assert stylizer.style_names == ["stripes", "dots"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_path = reg.resolve(str(shutil.copy(exported(), elsewhere / "mine.onnx")), provider="cpu")
    assert by_path.info.source == "file" and by_path.info.name == "mine"


def test_the_folder_is_globbed_again_only_when_it_changes(tmp_path: Path) -> None:
    shutil.copy(exported(), tmp_path / "one.onnx")
    old = _age_folder(tmp_path)
    reg = Registry(tmp_path, bundled=False)
    assert reg.names() == ["one"]
    # A file slipped in while the folder's mtime is forced back: the cached listing is used, no glob.
    shutil.copy(exported(), tmp_path / "two.onnx")
    os.utime(tmp_path, ns=(old, old))
    assert reg.names() == ["one"]
    _age_folder(tmp_path)  # any change of the folder's mtime: globbed again
    assert reg.names() == ["one", "two"]


def test_a_recently_changed_folder_is_always_rescanned(tmp_path: Path) -> None:
    shutil.copy(exported(), tmp_path / "one.onnx")
    reg = Registry(tmp_path, bundled=False)
    assert reg.names() == ["one"]
    now = time.time_ns()
    shutil.copy(exported(), tmp_path / "two.onnx")
    os.utime(tmp_path, ns=(now, now))  # same tick as a listing could have been taken in: not trusted
    assert reg.names() == ["one", "two"]
    (tmp_path / "one.onnx").unlink()
    assert reg.names() == ["two"]
