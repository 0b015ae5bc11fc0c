"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Write to a temporary file in the target's directory, fsync it, then
``os.replace`` it onto the target, which POSIX guarantees to be atomic on one
filesystem. Used for checkpoints, stylized images, ONNX files and videos.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from restyle.errors import UserError


class WriteFailed(UserError, OSError):
    """An output could not be written (disk full, file too large, read-only): one clear line, nothing partial.

    Also an ``OSError``, so code that handles I/O errors keeps working.
    """

    exit_code = 1
    http_status = 507


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it onto ``target``.

    The temporary name keeps the target's suffix (or ``suffix``) so that
    libraries which infer a format from the extension (Pillow, PyAV) still work.
    On any exception the temporary file is removed and the target is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp" + (suffix if suffix is not None else target.suffix), dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; a finished output should get the permissions a plain open() would give.
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, WriteFailed):
            raise
        raise WriteFailed(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``os.umask`` can only be read by setting it, and setting it races with
    every other thread that creates files in between (they would get 0o022).
    Linux reports it in /proc/self/status (kernel 4.7+), so there it is
    read-only; elsewhere the set-and-restore fallback remains.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_copy_new(source: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Copy ``source`` to ``target`` atomically unless ``target`` exists; True when copied.

    Like :func:`atomic_path`, but the fsynced temporary file is hard-linked to
    the target instead of renamed over it: a link fails when the name is
    taken, so two writers of one name never replace each other's file. On a
    filesystem without hard links: an existence check, then a rename.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        shutil.copyfile(source, tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(tmp_path, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if target.exists():
                return False
            os.replace(tmp_path, target)
        _fsync_dir(target.parent)
        return True
    except OSError as exc:
        if isinstance(exc, WriteFailed):
            raise
        raise WriteFailed(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
