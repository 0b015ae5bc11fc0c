"""Atomic writes: all or nothing, with ordinary permissions."""

import os
from pathlib import Path

import pytest

from restyle.atomic import atomic_path, atomic_write_bytes


def test_success_replaces_and_respects_umask(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    old = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux reports the umask in /proc")
def test_reading_the_umask_never_sets_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting the umask to read it races with every thread creating files meanwhile; on Linux it is only read."""
    import restyle.atomic as atomic

    old = os.umask(0o077)
    calls: list[int] = []
    real_umask = os.umask
    monkeypatch.setattr(atomic.os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
    try:
        atomic_write_bytes(tmp_path / "out.bin", b"y")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert calls == []
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o600
