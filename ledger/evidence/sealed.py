"""Sealed personal data: encrypted outside the log, committed to inside it.

A reporter's or bystander's personal data never enters a signed statement. ``seal`` encrypts it
with AES-256-GCM under a fresh data key, wraps that key with the department key (AES-256-GCM, key
id = first 8 bytes of SHA-256 of the key, hex), and stores the record in ``sealed_records`` — a
table outside the log. The statement carries ``{"sealed_ref", "commitment"}`` where the commitment
is HMAC-SHA256(salt, canonical plaintext) with a random 32-byte salt kept only inside the sealed
record. Deleting the record (crypto-shredding) therefore leaves every signature and proof valid and
the commitment unlinkable to the person.
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

from domain.errors import MalformedInputError, NotFoundError, VerificationError
from ledger.envelope.canonical import canonical, format_time, parse_strict
from ledger.storage.sql import Database

MAX_SEALED_BYTES = 64 * 1024


@dataclass(frozen=True)
class DepartmentKey:
    """The key-encryption key from configuration (32 bytes)."""

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
    def __init__(self, db: Database, kek: DepartmentKey) -> None:
        self.db = db
        self.kek = kek

    def seal(self, data: Any, *, now: datetime) -> SealedReference:
        """Encrypt and store ``data`` (any JSON value); return the reference to put in an event."""
        plaintext = canonical(data)
        if len(plaintext) > MAX_SEALED_BYTES:
            raise MalformedInputError(f"sealed data is limited to {MAX_SEALED_BYTES} bytes", code="TOO_LARGE")
        salt = secrets.token_bytes(32)
        ref = str(uuid.uuid4())
        record = canonical({"data": data, "salt": base64.b64encode(salt).decode("ascii")})
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        ciphertext = AESGCM(data_key).encrypt(nonce, record, ref.encode("ascii"))
        wrap_nonce = secrets.token_bytes(12)
        wrapped = wrap_nonce + AESGCM(self.kek.key).encrypt(wrap_nonce, data_key, ref.encode("ascii"))
        with self.db.write() as tx:
            tx.execute(
                "INSERT INTO sealed_records (sealed_ref, kek_id, wrapped_key, nonce, ciphertext, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (ref, self.kek.key_id, wrapped, nonce, ciphertext, format_time(now)),
            )
        return SealedReference(ref, commitment(salt, plaintext))

    def unseal(self, sealed_ref: str) -> tuple[Any, str]:
        """Decrypt a record; returns (data, commitment). For custodians and tests only."""
        with self.db.read() as tx:
            row = tx.one(
                "SELECT kek_id, wrapped_key, nonce, ciphertext FROM sealed_records WHERE sealed_ref = ?",
                (sealed_ref,),
            )
        if row is None:
            raise NotFoundError("no such sealed record", code="SEALED_NOT_FOUND")
        kek_id, wrapped, nonce, ciphertext = row[0], bytes(row[1]), bytes(row[2]), bytes(row[3])
        if kek_id != self.kek.key_id:
            raise VerificationError("sealed record was wrapped by another department key", code="WRONG_KEY")
        aad = sealed_ref.encode("ascii")
        try:
            data_key = AESGCM(self.kek.key).decrypt(wrapped[:12], wrapped[12:], aad)
            record = parse_strict(AESGCM(data_key).decrypt(nonce, ciphertext, aad))
        except InvalidTag:
            raise VerificationError("sealed record fails authentication", code="SEALED_TAMPERED") from None
        salt = base64.b64decode(record["salt"])
        return record["data"], commitment(salt, canonical(record["data"]))
