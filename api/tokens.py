"""Bearer tokens for the HTTP API, stored hashed in the ledger's database (table ``api_tokens``).

A token reads ``elt_<token_id>_<secret>``: ``token_id`` (16 hex characters) names the row, the
secret is 32 random bytes (URL-safe base64). Only SHA-256 of the whole token is stored; the check
looks the row up by id and compares the hashes with :func:`hmac.compare_digest`. The plaintext is
shown once, by ``evidence-ledger tokens issue``, and never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.errors import MalformedInputError, NotFoundError
from domain.roles import ROLES as DOMAIN_ROLES
from ledger.canonical import format_time, parse_time
from ledger.storage.sql import Database

API_ROLES: tuple[str, ...] = ("investigator", "supervisor", "auditor", "prosecutor", "admin")
assert set(API_ROLES) <= set(DOMAIN_ROLES)

TOKEN_RE = re.compile(r"^elt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
TOKEN_ID_RE = re.compile(r"^[0-9a-f]{16}$")
ACTOR_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
DURATION_RE = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

DDL = [
    """CREATE TABLE IF NOT EXISTS api_tokens (
        token_id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, actor TEXT NOT NULL,
        role TEXT NOT NULL, authority TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        revoked_at TEXT)""",
]
_COLUMNS = "token_id, actor, role, authority, created_at, expires_at, revoked_at"
NEEDS_IO = object()  # verify_cached: the answer needs a database read


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``3600s``."""
    match = DURATION_RE.match(text.strip())
    if match is None:
        raise MalformedInputError("duration must look like 30d, 12h, 90m or 3600s", code="BAD_ARGUMENT")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without its hash."""

    token_id: str
    actor: str
    role: str
    authority: str | None
    created_at: str
    expires_at: str
    revoked_at: str | None

    def status_at(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if parse_time(self.expires_at) <= now else "active"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status_at(now)}


@dataclass(frozen=True)
class IssuedToken:
    record: TokenRecord
    token: str  # shown once


class TokenStore:
    """Issue, check, revoke and list tokens. Thread-safe (each call is its own transaction)."""

    def __init__(
        self,
        db: Database,
        *,
        authorities: tuple[str, ...],
        max_lifetime: timedelta = timedelta(days=90),
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.authorities = authorities
        self.max_lifetime = max_lifetime
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, TokenRecord, str]] = {}
        self._lock = threading.Lock()

    def ensure_schema(self) -> None:
        """Create the table if needed (serialised with every other writer by the write lock)."""
        with self.db.write() as tx:
            for statement in DDL:
                tx.execute(statement)

    # -- issuing -----------------------------------------------------------------------------

    def issue(
        self, *, actor: str, role: str, authority: str | None, expires_in: timedelta, now: datetime
    ) -> IssuedToken:
        self._check_issue(actor, role, authority, expires_in)
        token_id = secrets.token_hex(8)
        token = f"elt_{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(
            token_id=token_id, actor=actor, role=role, authority=authority,
            created_at=format_time(now), expires_at=format_time(now + expires_in), revoked_at=None,
        )
        with self.db.write() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_id, token_sha256, actor, role, authority, created_at,"
                " expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (token_id, token_sha256(token), actor, role, authority, record.created_at, record.expires_at),
            )
        return IssuedToken(record, token)

    def _check_issue(self, actor: str, role: str, authority: str | None, expires_in: timedelta) -> None:
        if role not in API_ROLES:
            raise MalformedInputError(f"role must be one of {', '.join(API_ROLES)}", code="BAD_ARGUMENT")
        if not ACTOR_RE.match(actor):
            raise MalformedInputError("actor must be 1-200 printable characters", code="BAD_ARGUMENT")
        if role == "prosecutor" and authority not in self.authorities:
            raise MalformedInputError(
                f"prosecutor tokens need --authority, one of {', '.join(self.authorities)}", code="BAD_ARGUMENT"
            )
        if role != "prosecutor" and authority is not None:
            raise MalformedInputError("only prosecutor tokens carry an authority", code="BAD_ARGUMENT")
        if not timedelta(0) < expires_in <= self.max_lifetime:
            raise MalformedInputError(
                f"token lifetime must be positive and at most {self.max_lifetime.days} days", code="BAD_ARGUMENT"
            )

    # -- checking ----------------------------------------------------------------------------

    def verify(self, token: str, *, now: datetime) -> TokenRecord | None:
        """The token's record if it is well-formed, known, unrevoked and unexpired; else None."""
        match = TOKEN_RE.match(token)
        if match is None:
            return None
        digest = token_sha256(token)
        record, stored = self._lookup(match.group(1))
        if record is None or not hmac.compare_digest(stored.encode("ascii"), digest.encode("ascii")):
            return None
        return record if record.status_at(now) == "active" else None

    def verify_cached(self, token: str, *, now: datetime) -> TokenRecord | object | None:
        """Like :meth:`verify` but without I/O: NEEDS_IO when the answer needs a database read."""
        match = TOKEN_RE.match(token)
        if match is None:
            return None
        hit = self._cached(match.group(1))
        if hit is None:
            return NEEDS_IO
        record, stored = hit
        if not hmac.compare_digest(stored.encode("ascii"), token_sha256(token).encode("ascii")):
            return None
        return record if record.status_at(now) == "active" else None

    def _cached(self, token_id: str) -> tuple[TokenRecord, str] | None:
        if self.cache_seconds <= 0:
            return None
        with self._lock:
            hit = self._cache.get(token_id)
        if hit is not None and hit[0] > self._monotonic():
            return hit[1], hit[2]
        return None

    def _lookup(self, token_id: str) -> tuple[TokenRecord | None, str]:
        hit = self._cached(token_id)
        if hit is not None:
            return hit
        with self.db.read() as tx:
            row = tx.one(f"SELECT {_COLUMNS}, token_sha256 FROM api_tokens WHERE token_id = ?", (token_id,))
        if row is None:
            return None, "0" * 64
        record, stored = TokenRecord(*row[:7]), str(row[7])
        if self.cache_seconds > 0:
            with self._lock:
                self._cache[token_id] = (self._monotonic() + self.cache_seconds, record, stored)
        return record, stored

    # -- administration ----------------------------------------------------------------------

    def revoke(self, token_id: str, *, now: datetime) -> TokenRecord:
        if not TOKEN_ID_RE.match(token_id):
            raise MalformedInputError("TOKEN_ID is 16 hex characters", code="BAD_ARGUMENT")
        with self.db.write() as tx:
            tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (format_time(now), token_id),
            )
            row = tx.one(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = ?", (token_id,))
        with self._lock:
            self._cache.pop(token_id, None)
        if row is None:
            raise NotFoundError("no token with this id", code="TOKEN_NOT_FOUND", token_id=token_id)
        return TokenRecord(*row)

    def list(self) -> list[TokenRecord]:
        with self.db.read() as tx:
            rows = tx.query(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, token_id")
        return [TokenRecord(*row) for row in rows]
