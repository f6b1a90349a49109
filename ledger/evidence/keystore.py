"""Where the keys of sealed records live: apart from the data (docs/privacy.md).

Every sealed record has its own AES-256 data key. The database holds only the record's ciphertext,
nonce and ids; the key that decrypts it is in a :class:`KeyStore`, which is never in the data dir
or the database's directory (unless in demo mode, which ``init``, ``serve`` and ``/readyz`` say
loudly). Destroying a record's key (:meth:`KeyStore.destroy`) is the crypto-shred: the ciphertext
in the database, its backups and any copy of them can then never be read again.

:class:`FileKeyStore` is the file implementation: a directory (mode 0700) holding ``kek.key`` (the
key-encryption key, 32 random bytes, base64, mode 0600) and ``records/<sha256 of the ref>.key``
(the record's data key wrapped with AES-256-GCM under the KEK, the record reference as associated
data). A PKCS#11 module maps onto the same four operations (docs/privacy.md, "The HSM option").
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import LedgerError, NotFoundError, VerificationError
from ledger.durable import fsync_dir
from ledger.settings import ConfigurationError

KEK_FILE = "kek.key"
RECORDS = "records"
WRAP_VERSION = b"\x01"
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class KeyMissing(NotFoundError):
    """The keystore holds no key for this record (never sealed here, or shredded)."""

    code = "SEALED_KEY_MISSING"


class KeyStore(Protocol):
    """The four operations the ledger needs from wherever the record keys are kept."""

    @property
    def description(self) -> str:
        """Where the keys are, for messages and ``/readyz`` (never key material)."""
        ...

    def put(self, sealed_ref: str, data_key: bytes) -> None:
        """Keep ``data_key`` for ``sealed_ref`` durably (refuse to replace an existing one)."""
        ...

    def get(self, sealed_ref: str) -> bytes:
        """The data key of ``sealed_ref``; :class:`KeyMissing` when there is none."""
        ...

    def has(self, sealed_ref: str) -> bool: ...

    def destroy(self, sealed_ref: str) -> bool:
        """Destroy the key of ``sealed_ref`` beyond recovery; True if there was one (idempotent)."""
        ...


def _private_dir(path: Path) -> None:
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"the keystore {path} is not a directory", code="KEYSTORE_UNUSABLE")
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"the keystore {path} must be readable by its owner only (mode 0700)", code="KEYSTORE_UNUSABLE"
        )


class FileKeyStore:
    """Record keys in files, each wrapped by a key-encryption key kept in the same directory."""

    def __init__(self, path: Path, kek: bytes) -> None:
        self.path = path
        self._kek = AESGCM(kek)

    @property
    def description(self) -> str:
        return f"file keystore {self.path}"

    # -- opening ------------------------------------------------------------------------------

    @staticmethod
    def create(path: Path) -> FileKeyStore:
        """Make the directory (0700) and its KEK; an existing keystore is opened as it is."""
        if (path / KEK_FILE).exists():
            return FileKeyStore.open(path)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
        (path / RECORDS).mkdir(exist_ok=True, mode=0o700)
        kek = AESGCM.generate_key(bit_length=256)
        _write_new(path / KEK_FILE, base64.b64encode(kek) + b"\n")
        fsync_dir(path)
        return FileKeyStore(path, kek)

    @staticmethod
    def open(path: Path) -> FileKeyStore:
        if not (path / KEK_FILE).is_file():
            raise ConfigurationError(
                f"no keystore at {path}: set EVIDENCE_LEDGER_KEYSTORE_DIR (or --keystore-dir) to the keystore "
                "directory `init` created (docs/privacy.md)",
                code="KEYSTORE_NOT_FOUND",
            )
        _private_dir(path)
        try:
            kek = base64.b64decode((path / KEK_FILE).read_bytes().strip(), validate=True)
        except ValueError:
            kek = b""
        if len(kek) != 32:
            raise ConfigurationError(f"{path / KEK_FILE} must hold a base64 32-byte key", code="KEYSTORE_UNUSABLE")
        (path / RECORDS).mkdir(exist_ok=True, mode=0o700)
        return FileKeyStore(path, kek)

    # -- the four operations ------------------------------------------------------------------

    def _file(self, sealed_ref: str) -> Path:
        return self.path / RECORDS / (hashlib.sha256(sealed_ref.encode("utf-8")).hexdigest() + ".key")

    def put(self, sealed_ref: str, data_key: bytes) -> None:
        nonce = secrets.token_bytes(12)
        wrapped = WRAP_VERSION + nonce + self._kek.encrypt(nonce, data_key, sealed_ref.encode("utf-8"))
        _write_new(self._file(sealed_ref), wrapped)
        fsync_dir(self.path / RECORDS)

    def get(self, sealed_ref: str) -> bytes:
        try:
            fd = os.open(self._file(sealed_ref), os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            raise KeyMissing("the keystore holds no key for this sealed record", sealed_ref=sealed_ref) from None
        with os.fdopen(fd, "rb") as handle:
            wrapped = handle.read(4096)
        if len(wrapped) < 13 or wrapped[:1] != WRAP_VERSION:
            raise VerificationError("a record key file is damaged", code="SEALED_TAMPERED", sealed_ref=sealed_ref)
        try:
            return self._kek.decrypt(wrapped[1:13], wrapped[13:], sealed_ref.encode("utf-8"))
        except InvalidTag:
            raise VerificationError(
                "a record key fails authentication (another keystore's, or altered)",
                code="SEALED_TAMPERED",
                sealed_ref=sealed_ref,
            ) from None

    def has(self, sealed_ref: str) -> bool:
        return self._file(sealed_ref).is_file()

    def destroy(self, sealed_ref: str) -> bool:
        return destroy_file(self._file(sealed_ref))

    def key_files(self) -> int:
        """How many record keys the keystore holds."""
        return sum(1 for p in (self.path / RECORDS).iterdir() if p.suffix == ".key")


def destroy_file(path: Path) -> bool:
    """Overwrite a key file with random bytes, fsync it, unlink it and fsync its directory; False if
    it was not there.

    What may remain on the medium after that (a journaling file system, an SSD's remapped blocks,
    snapshots) is a wrapped key, which only the KEK opens; docs/privacy.md says what that means."""
    try:
        fd = os.open(path, os.O_RDWR | _NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, secrets.token_bytes(max(size, 64)), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    fsync_dir(path.parent)
    return True


def _write_new(path: Path, data: bytes) -> None:
    """Write a new file (0600) durably; refuse to replace one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        raise LedgerError("a key for this sealed record already exists", code="SEALED_KEY_EXISTS") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
