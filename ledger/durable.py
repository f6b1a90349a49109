"""Durable files: what a crash may leave is either the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, exact_mode: bool = False) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync the directory."""
    replace_synced(path, data, mode, exact_mode=exact_mode)
    fsync_dir(path.parent)


def replace_synced(path: Path, data: bytes, mode: int = 0o644, *, exact_mode: bool = False) -> None:
    """Temp file, fsync, rename: the directory entry is the caller's to fsync (after a batch of files).

    The file gets ``mode`` less the process umask; with ``exact_mode`` exactly ``mode`` (files meant
    for others, e.g. public tiles read by a web server, written by a service running with UMask=0077)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if exact_mode:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def make_dirs(path: Path, mode: int) -> list[Path]:
    """Create ``path`` and its missing parents, each with exactly ``mode`` (whatever the umask);
    existing directories are left as they are. Returns the directories created, outermost first."""
    missing = []
    parent = path
    while not parent.is_dir():
        missing.append(parent)
        parent = parent.parent
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by another writer: its mode is that writer's
        os.chmod(directory, mode)
        created.append(directory)
    return created
