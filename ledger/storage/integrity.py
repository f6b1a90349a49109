"""Row integrity: every row the service later acts on carries a MAC under a key that is not in the database.

The read models (case state, timeline lines, public release rows, the log head) and the API tokens
are rows anyone with write access to the database can edit. The service must never *act* on such
an edit: lift a hold, accept a revoked key, honour a forged token. So each such row is written with
``mac = HMAC-SHA256(state key, kind ‖ every column)`` and checked on every read. The state key
(``keys/state.key``, 32 random bytes, mode 0600) lives with the service's other private keys, never
in the database, so a database administrator cannot make a row that checks.

A MAC proves a row was written by the service, not that it is the *current* row: a restored older
row still checks. Freshness comes from the append-only log: a case row must be at the version of
the case's last log entry, the log head at the log's size (``docs/design.md``, "Decisions come only
from signed data").

A row that fails either check raises :class:`StateTampered` (HTTP 503, CLI exit 1): nothing is
appended, the operator is told to run ``evidence-ledger audit`` and then ``evidence-ledger replay``.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from domain.errors import MalformedInputError
from ledger.settings import ConfigurationError
from ledger.storage.sql import StorageError

KEY_BYTES = 32
_DOMAIN = b"evidence-ledger/row-mac/v1\x00"
ALERT = logging.getLogger("evidence_ledger.integrity")

Field = str | int | bytes | None


class StateTampered(StorageError):
    """A stored row the service would act on is not one it wrote, or is not the current one."""

    code = "STATE_TAMPERED"

    def again(self) -> StateTampered:
        """The same refusal as a fresh exception (one per refused envelope)."""
        error = StateTampered(self.message)
        error.refs = dict(self.refs)
        return error


def tampered(what: str, *, check: str, **refs: object) -> StateTampered:
    """The refusal for a row that failed its ``check`` (``what`` describes the stream: "case <id>",
    "the key registry", "the log"…; ``refs`` locate it: the case id, or the stream's name), logged
    as an alert. Never carries row contents; the check is logged, not returned."""
    ALERT.error("stored state failed its integrity check: %s (%s)", what, check, extra={"refs": refs})
    error = StateTampered(
        f"the stored state of {what} does not match the signed log: nothing was done. "
        "Run `evidence-ledger audit`, then `evidence-ledger replay` to rebuild the read models "
        "from the signed events"
    )
    error.refs = dict(refs)
    return error


def _encode(value: Field) -> bytes:
    """Unambiguous, length-prefixed encoding of one column (type tag + length + bytes)."""
    if value is None:
        return b"n"
    if isinstance(value, bool):
        raise TypeError("booleans are not row fields")
    if isinstance(value, int):
        text = str(value).encode("ascii")
        return b"i" + len(text).to_bytes(4, "big") + text
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return (b"s" if isinstance(value, str) else b"b") + len(raw).to_bytes(8, "big") + raw


class RowMac:
    """HMAC-SHA256 over a row's kind and columns."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MalformedInputError(f"the state key is {KEY_BYTES} bytes", code="BAD_KEY")
        self._key = key

    @classmethod
    def create(cls, path: Path) -> RowMac:
        """Write a new random key to ``path`` (mode 0600, refusing to overwrite)."""
        key = secrets.token_bytes(KEY_BYTES)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> RowMac:
        try:
            text = path.read_bytes().strip()
        except FileNotFoundError:
            raise ConfigurationError(
                f"the state key {path} is missing: run `evidence-ledger db migrate` (it creates one for a "
                "data dir from an older release), or point --data-dir at the right data dir"
            ) from None
        except OSError as exc:
            raise MalformedInputError(f"cannot read the state key {path}: {exc.strerror}", code="BAD_KEY") from None
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            raise MalformedInputError(f"{path} is not a base64 state key", code="BAD_KEY") from None
        return cls(key)

    def mac(self, kind: str, fields: Sequence[Field]) -> str:
        message = b"".join([_DOMAIN, _encode(kind), *map(_encode, fields)])
        return hmac.digest(self._key, message, "sha256").hex()  # one-shot: OpenSSL, no Python loop

    def valid(self, kind: str, fields: Sequence[Field], mac: object) -> bool:
        return isinstance(mac, str) and hmac.compare_digest(self.mac(kind, fields), mac)
