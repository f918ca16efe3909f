"""Publishing a file atomically: a reader sees the old file or the new one, never a part of one.

Every file emorec publishes goes through :func:`atomic_write` (or its two halves, for writers that
stage several files before renaming them, as :meth:`emorec.jobs.store.Workspace.write_tables`
does): a temporary file in the same folder (``.<name>.<random>.tmp``, the pattern
``Workspace.lock`` sweeps after a killed run), written, flushed and fsynced, renamed over the
target, and the folder fsynced so that the rename itself survives a crash.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "publish", "temp_path", "write_synced"]


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name next to ``path``: ``<folder>/.<name>.<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name.lstrip('.')}.{uuid.uuid4().hex}.tmp")


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(tmp: Path, write: Callable[[Path], object], mode: int = 0o666) -> None:
    """Create ``tmp`` (exclusively, never through a symbolic link, with permission bits ``mode``
    less the umask), let ``write(tmp)`` fill it, and flush it to disk."""
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode))
    write(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, path: Path) -> None:
    """Rename the written ``tmp`` over ``path`` and flush the folder."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write(path: str | Path, write: Callable[[Path], object], mode: int = 0o666) -> Path:
    """Publish the file that ``write(tmp)`` writes at a temporary path as ``path``, atomically.

    Parameters
    ----------
    path
        The file to (re)place; its folder must exist.
    write
        Called with the temporary path (already created, empty); writes the content there,
        e.g. ``lambda p: df.to_parquet(p)``.
    mode
        Permission bits of the new file (less the umask), e.g. ``0o600`` for a secret.

    Raises
    ------
    OSError
        When the file cannot be written; ``path`` is then untouched and no temporary file is
        left. Callers turn it into the error their user can act on.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        write_synced(tmp, write, mode)
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes, mode: int = 0o666) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda p: p.write_bytes(data), mode)


def atomic_write_text(path: str | Path, text: str, mode: int = 0o666) -> Path:
    """:func:`atomic_write` of ``text`` in UTF-8."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"), mode)
