"""Sealed personal data: encrypted outside the log, committed to inside it, keyed apart from both.

A reporter's or bystander's personal data never enters a signed statement. ``seal`` encrypts it
with AES-256-GCM under a fresh data key of its own, puts that key in the :class:`KeyStore`
(``ledger/evidence/keystore.py``: never the data dir or the database's directory) and stores only
the ciphertext, nonce and ids in ``sealed_records``, a table outside the log. The statement carries
``{"sealed_ref", "commitment"}`` where the commitment is HMAC-SHA256(salt, canonical plaintext)
with a random 32-byte salt kept only inside the sealed record. A copy of the database and the data
dir therefore opens nothing; destroying a record's key (crypto-shredding, ``ledger/evidence/disclosure.py``)
leaves every signature and proof valid and the commitment unlinkable to the person.

A record is bound to the first case whose event names it (``claim``, in the append transaction):
one sealed record belongs to one case only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import MalformedInputError, NotFoundError, RuleViolation, VerificationError
from ledger.envelope.canonical import canonical, format_time, parse_strict
from ledger.evidence.keystore import KeyMissing, KeyStore
from ledger.storage.sql import Database, Tx

MAX_SEALED_BYTES = 64 * 1024


@dataclass(frozen=True)
class DepartmentKey:
    """The department key (``seal.key`` in the data dir) that wrapped every record's data key before
    schema 3; read only to move those keys into the keystore (``move_legacy_keys``)."""

    key: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.key).hexdigest()[:16]

    @staticmethod
    def load(path: Path) -> DepartmentKey:
        raw = base64.b64decode(path.read_text("ascii").strip(), validate=True)
        if len(raw) != 32:
            raise MalformedInputError(f"{path} must hold a base64 32-byte key", code="BAD_KEY")
        return DepartmentKey(raw)

    @staticmethod
    def create(path: Path) -> DepartmentKey:
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(key).decode("ascii") + "\n")
        return DepartmentKey(key)


@dataclass(frozen=True)
class SealedReference:
    sealed_ref: str
    commitment: str

    def to_json(self) -> dict[str, str]:
        return {"sealed_ref": self.sealed_ref, "commitment": self.commitment}


def commitment(salt: bytes, plaintext: bytes) -> str:
    return hmac.new(salt, plaintext, hashlib.sha256).hexdigest()


class SealedStore:
    def __init__(self, db: Database, keystore: KeyStore) -> None:
        self.db = db
        self.keystore = keystore

    def seal(self, data: Any, *, now: datetime) -> SealedReference:
        """Encrypt and store ``data`` (any JSON value); return the reference to put in an event.

        The key is kept (durably) before the row is written: a crash in between leaves an unused key,
        never a row that nothing can open."""
        plaintext = canonical(data)
        if len(plaintext) > MAX_SEALED_BYTES:
            raise MalformedInputError(f"sealed data is limited to {MAX_SEALED_BYTES} bytes", code="TOO_LARGE")
        salt = secrets.token_bytes(32)
        ref = str(uuid.uuid4())
        record = canonical({"data": data, "salt": base64.b64encode(salt).decode("ascii")})
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        ciphertext = AESGCM(data_key).encrypt(nonce, record, ref.encode("ascii"))
        self.keystore.put(ref, data_key)
        with self.db.write() as tx:
            tx.execute(
                "INSERT INTO sealed_records (sealed_ref, nonce, ciphertext, created_at) VALUES (?, ?, ?, ?)",
                (ref, nonce, ciphertext, format_time(now)),
            )
        return SealedReference(ref, commitment(salt, plaintext))

    def unseal(self, sealed_ref: str) -> tuple[Any, str]:
        """Decrypt a record; returns (data, commitment). Only the disclosure path
        (``ledger.evidence.disclosure.disclose``) calls it, after the signed disclosure is appended."""
        with self.db.read() as tx:
            row = tx.one("SELECT nonce, ciphertext FROM sealed_records WHERE sealed_ref = ?", (sealed_ref,))
        if row is None:
            raise NotFoundError("no such sealed record", code="SEALED_NOT_FOUND", sealed_ref=sealed_ref)
        nonce, ciphertext = bytes(row[0]), bytes(row[1])
        try:
            data_key = self.keystore.get(sealed_ref)
        except KeyMissing:
            raise NotFoundError(
                "the sealed record's key is not in the keystore", code="SEALED_KEY_MISSING", sealed_ref=sealed_ref
            ) from None
        try:
            record = parse_strict(AESGCM(data_key).decrypt(nonce, ciphertext, sealed_ref.encode("ascii")))
        except InvalidTag:
            raise VerificationError(
                "sealed record fails authentication", code="SEALED_TAMPERED", sealed_ref=sealed_ref
            ) from None
        salt = base64.b64decode(record["salt"])
        return record["data"], commitment(salt, canonical(record["data"]))

    def row_exists(self, sealed_ref: str) -> bool:
        with self.db.read() as tx:
            return tx.one("SELECT 1 FROM sealed_records WHERE sealed_ref = ?", (sealed_ref,)) is not None

    def erase_row(self, sealed_ref: str) -> bool:
        """Delete the record's row so that its bytes leave the database files too (SQLite:
        ``secure_delete`` and a WAL checkpoint(TRUNCATE); PostgreSQL: see docs/privacy.md)."""
        with self.db.erasing() as tx:
            tx.execute("DELETE FROM sealed_records WHERE sealed_ref = ?", (sealed_ref,))
            gone = tx.rowcount() > 0
        return gone


def claim(tx: Tx, sealed_ref: str, case_id: str) -> None:
    """Inside the append transaction: bind a sealed record to the case whose event names it. Refused
    (``UNKNOWN_SEALED_REF``) when no such record exists (never sealed, or shredded), and
    (``SEALED_REF_IN_OTHER_CASE``) when another case already names it."""
    row = tx.one("SELECT case_id FROM sealed_records WHERE sealed_ref = ?", (sealed_ref,))
    if row is None:
        raise RuleViolation(
            "no sealed record with this reference (never sealed, or shredded)",
            code="UNKNOWN_SEALED_REF",
            sealed_ref=sealed_ref,
        )
    if row[0] is None:
        tx.execute("UPDATE sealed_records SET case_id = ? WHERE sealed_ref = ?", (case_id, sealed_ref))
    elif row[0] != case_id:
        raise RuleViolation(
            "the sealed record belongs to another case", code="SEALED_REF_IN_OTHER_CASE", sealed_ref=sealed_ref
        )


def move_legacy_keys(db: Database, keystore: KeyStore, department_key: Path) -> int:
    """Schema 3's data step: every record key that an older release wrapped with the department key and
    kept in the database moves into the keystore, then leaves the database; the department key is
    destroyed last. Resumable: each key is removed from the database only once the keystore holds it."""
    from ledger.evidence.keystore import destroy_file

    moved = 0
    kek = DepartmentKey.load(department_key) if department_key.exists() else None
    with db.read() as tx:
        rows = tx.query("SELECT sealed_ref, kek_id, wrapped_key FROM sealed_keys_to_move ORDER BY sealed_ref")
    for ref, kek_id, wrapped in rows:
        ref, wrapped = str(ref), bytes(wrapped)
        if not keystore.has(ref):
            if kek is None or kek.key_id != kek_id:
                raise VerificationError(
                    "a sealed record was wrapped by another department key than seal.key", code="WRONG_KEY",
                    sealed_ref=ref,
                )
            try:
                data_key = AESGCM(kek.key).decrypt(wrapped[:12], wrapped[12:], ref.encode("ascii"))
            except InvalidTag:
                raise VerificationError("sealed record fails authentication", code="SEALED_TAMPERED") from None
            keystore.put(ref, data_key)
            moved += 1
        with db.erasing() as tx:
            tx.execute("DELETE FROM sealed_keys_to_move WHERE sealed_ref = ?", (ref,))
    with db.erasing() as tx:
        tx.execute("DROP TABLE sealed_keys_to_move")
    db.compact(vacuum=True)  # SQLite: the pages the dropped key columns freed are rewritten away
    destroy_file(department_key)
    return moved


def bind_existing_records(db: Database) -> int:
    """Schema 3's second data step: bind each existing record to the case whose stored report names it
    (the first one, in log order), so that no other case can name it from now on."""
    from ledger.envelope.dsse import parse_envelope

    with db.read() as tx:
        rows = tx.query(
            f"SELECT e.case_id, s.state FROM log_entries e JOIN {db.events_table} s"
            f" ON s.originator_id = {db.case_key_sql('e.case_id')} AND s.originator_version = e.seq"
            " WHERE e.event_type = 'ReportReceived' ORDER BY e.leaf_index"
        )
    bound = 0
    with db.write() as tx:
        for case_id, raw in rows:
            reporter = parse_envelope(bytes(raw)).statement.body.get("reporter")
            ref = reporter.get("sealed_ref") if isinstance(reporter, dict) else None
            if isinstance(ref, str):
                tx.execute(
                    "UPDATE sealed_records SET case_id = ? WHERE sealed_ref = ? AND case_id IS NULL", (case_id, ref)
                )
                bound += tx.rowcount()
    return bound
