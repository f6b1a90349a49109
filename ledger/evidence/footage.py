"""The footage store: content-addressed files under ``<data_dir>/footage/ab/cd/<sha256>``.

A file's name is the lowercase hex SHA-256 of its bytes, computed while it streams in. Only a
64-hex id ever becomes a path (no client-chosen name reaches the filesystem), files are opened with
``O_NOFOLLOW`` and their resolved path must stay inside the store, so a planted symlink is refused,
never followed. Writes go to a temporary file inside the store, are fsynced, renamed into place and
the folder is fsynced: a crash leaves either the whole file or nothing under its name. A file that is
already stored is not written twice. Stored files are read-only (0400).

Fixity checks live in ``ledger/fixity.py``; what a download checks before it is recorded
(``require_evidence``) here.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from domain.errors import LedgerError, MalformedInputError, NotFoundError, VerificationError
from ledger.durable import fsync_dir

if TYPE_CHECKING:
    from ledger.store import Ledger

DEFAULT_MAX_BYTES = 20 * 1024**3
CHUNK = 1024 * 1024
TMP_DIR = ".tmp"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART = re.compile(r"[0-9a-f]{2}")
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class EvidenceTooLarge(MalformedInputError):
    """The upload exceeds the store's size cap (the API answers 413)."""

    code = "EVIDENCE_TOO_LARGE"


class UnsafeStoreEntry(LedgerError):
    """Something in the store is not a regular file inside it (a symlink, a device, a folder)."""

    code = "UNSAFE_STORE_ENTRY"


def check_sha256(value: object) -> str:
    """``value`` if it is exactly 64 lowercase ASCII hex digits; otherwise MalformedInputError."""
    if not isinstance(value, str) or len(value) != 64 or _SHA256.fullmatch(value) is None:
        raise MalformedInputError(
            "an evidence id is 64 lowercase hex digits (SHA-256)", code="BAD_EVIDENCE_ID"
        )
    return value


def _mkdir(path: Path) -> bool:
    """Create one folder (0700); True if it was created. Never follows a symlink in its place."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise UnsafeStoreEntry("a store folder is not a plain folder", path=path.name) from None
        return False
    return True


class FootageWriter:
    """One upload in progress: ``write`` chunks, then ``commit`` (or ``abort``)."""

    def __init__(self, store: FootageStore, max_bytes: int, expected_sha256: str | None) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.expected = None if expected_sha256 is None else check_sha256(expected_sha256)
        self.size = 0
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=store.tmp_dir(), prefix="put-")
        self._tmp = Path(name)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            raise ValueError("this upload is already finished")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.abort()
            raise EvidenceTooLarge(
                f"evidence files are limited to {self.max_bytes} bytes", limit=self.max_bytes
            )
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self) -> tuple[str, int, bool]:
        """(sha256, size, created) once the file is durably stored under its hash."""
        if self._file is None:
            raise ValueError("this upload is already finished")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            sha = self._hash.hexdigest()
            if self.expected is not None and sha != self.expected:
                raise VerificationError(
                    "the uploaded bytes do not hash to the announced SHA-256", code="DIGEST_MISMATCH"
                )
            created = self.store._install(self._tmp, sha)
        except BaseException:
            self.abort()
            raise
        return sha, self.size, created

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)


class FootageStore:
    """Content-addressed evidence files under one root folder."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    # -- naming ---------------------------------------------------------------------------------

    def path_of(self, sha256: str) -> Path:
        sha = check_sha256(sha256)
        return self.root / sha[:2] / sha[2:4] / sha

    def _inside(self, path: Path) -> bool:
        root = os.path.realpath(self.root)
        return os.path.realpath(path).startswith(root + os.sep)

    def tmp_dir(self) -> Path:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _mkdir(self.root / TMP_DIR)
        return self.root / TMP_DIR

    # -- writing --------------------------------------------------------------------------------

    def writer(self, *, max_bytes: int | None = None, expected_sha256: str | None = None) -> FootageWriter:
        return FootageWriter(self, self.max_bytes if max_bytes is None else max_bytes, expected_sha256)

    def put_stream(
        self,
        chunks: Iterable[bytes | bytearray | memoryview],
        *,
        max_bytes: int | None = None,
        expected_sha256: str | None = None,
    ) -> tuple[str, int, bool]:
        """Store a stream of bytes; (sha256, size, created). ``created`` is False when already stored."""
        writer = self.writer(max_bytes=max_bytes, expected_sha256=expected_sha256)
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def put_file(self, path: Path, *, max_bytes: int | None = None) -> tuple[str, int, bool]:
        with open(path, "rb") as handle:
            return self.put_stream(iter(lambda: handle.read(CHUNK), b""), max_bytes=max_bytes)

    def _install(self, tmp: Path, sha: str) -> bool:
        final = self.path_of(sha)
        if self.exists(sha):
            tmp.unlink(missing_ok=True)
            return False
        made = [p for p in (final.parent.parent, final.parent) if _mkdir(p)]
        if not self._inside(final):
            raise UnsafeStoreEntry("a store folder leads outside the store", sha256=sha)
        if os.path.lexists(final):
            raise UnsafeStoreEntry("something that is not a stored file holds this name", sha256=sha)
        os.chmod(tmp, 0o400)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        if made:  # new folders must be recorded by their parents too
            fsync_dir(final.parent.parent)
            fsync_dir(self.root)
        return True

    # -- reading --------------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        """True only for a regular file stored under this hash (never through a symlink)."""
        try:
            path = self.path_of(sha256)
            return stat.S_ISREG(os.lstat(path).st_mode) and self._inside(path)
        except (MalformedInputError, OSError):
            return False

    def open(self, sha256: str) -> IO[bytes]:
        """The stored file for reading; NotFoundError if absent, UnsafeStoreEntry if not a plain file."""
        path = self.path_of(sha256)
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            raise NotFoundError("no evidence file with this SHA-256", code="EVIDENCE_NOT_FOUND") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
                raise UnsafeStoreEntry("the stored name is a symlink", sha256=sha256) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not self._inside(path):
            os.close(fd)
            raise UnsafeStoreEntry("the stored name is not a regular file inside the store", sha256=sha256)
        return os.fdopen(fd, "rb")

    def stored_size(self, sha256: str) -> int | None:
        """The size in bytes of the regular file stored under this hash, from the file itself (fstat
        of the opened file, never through a symlink); None when there is no such file."""
        try:
            return self.size_of(sha256)
        except (MalformedInputError, NotFoundError, UnsafeStoreEntry, OSError):
            return None

    def size_of(self, sha256: str) -> int:
        with self.open(sha256) as handle:
            return os.fstat(handle.fileno()).st_size

    def iter_chunks(self, sha256: str, chunk: int = CHUNK) -> Iterator[bytes]:
        with self.open(sha256) as handle:
            yield from iter(lambda: handle.read(chunk), b"")

    def scan(self) -> Iterator[tuple[str | None, Path]]:
        """Every entry of the store: (sha256, path) for well-placed regular files, (None, path) for
        anything else (symlinks, stray files, misplaced names). The temporary folder is skipped."""
        if not self.root.is_dir():
            return
        for first in sorted(os.scandir(self.root), key=lambda e: e.name):
            if first.name == TMP_DIR:
                continue
            if not (_PART.fullmatch(first.name) and first.is_dir(follow_symlinks=False)):
                yield None, Path(first.path)
                continue
            for second in sorted(os.scandir(first.path), key=lambda e: e.name):
                if not (_PART.fullmatch(second.name) and second.is_dir(follow_symlinks=False)):
                    yield None, Path(second.path)
                    continue
                for item in sorted(os.scandir(second.path), key=lambda e: e.name):
                    placed = item.name.startswith(first.name + second.name) and _SHA256.fullmatch(item.name)
                    ok = placed and item.is_file(follow_symlinks=False)
                    yield (item.name if ok else None), Path(item.path)


def hash_open_file(handle: IO[bytes], progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return digest.hexdigest(), size


# --- downloads ------------------------------------------------------------------------------------


def find_media(ledger: Ledger, case_id: str, sha256: str) -> dict[str, str]:
    """``{"footage_id": …}`` or ``{"derivative_id": …}`` of the case's file with this SHA-256."""
    check_sha256(sha256)
    for footage in ledger.case_view(case_id).get("footage", []):
        if footage.get("sha256") == sha256:
            return {"footage_id": str(footage["footage_id"])}
        for derivative in footage.get("derivatives", []):
            if derivative.get("sha256") == sha256:
                return {"derivative_id": str(derivative["derivative_id"])}
    raise NotFoundError("this case records no file with this SHA-256", code="EVIDENCE_NOT_FOUND")


def require_evidence(ledger: Ledger, store: FootageStore, case_id: str, sha256: str) -> dict[str, str]:
    """The ids of the case's file with this SHA-256 (``find_media``), once it is known to be in the
    store; NotFoundError (EVIDENCE_NOT_FOUND) otherwise. A download records its access (the access log,
    ``api/access.py``) after this and before it opens the file: no byte leaves without a trace."""
    ids = find_media(ledger, case_id, sha256)
    if not store.exists(sha256):
        raise NotFoundError("the file is not in the footage store", code="EVIDENCE_NOT_FOUND")
    return ids


def store_for(data_dir: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FootageStore:
    return FootageStore(Path(data_dir) / "footage", max_bytes=max_bytes)
