"""Bearer tokens for the HTTP API, stored hashed and sealed in the ledger's database.

A token reads ``elt_<token_id>_<secret>``: ``token_id`` (16 hex characters) names the row, the
secret is 32 random bytes (URL-safe base64). Only SHA-256 of the whole token is stored; the check
looks the row up by id and compares the hashes with :func:`hmac.compare_digest`. The plaintext is
shown once, by ``evidence-ledger tokens issue``, and never stored or logged.

A database administrator must not be able to mint or bend a token. So:

* every ``api_tokens`` row carries a MAC under the service's state key (``ledger/integrity.py``)
  over every column: a forged row, or a changed actor, role, authority or expiry, fails the check
  and the request gets 401 (and ``audit`` reports ``TOKEN_TAMPERED``);
* a revocation is its own MAC'd row in ``api_token_revocations``, an append-only table (the
  PostgreSQL triggers stop every role): restoring an older ``api_tokens`` row cannot undo it;
* a token is issued only to an actor holding an active registered key of the same role (and
  authority), and stops working when that is no longer so.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.errors import AuthorizationError, MalformedInputError, NotFoundError
from domain.roles import ROLES as DOMAIN_ROLES
from ledger.envelope.canonical import format_time, parse_time
from ledger.storage.integrity import ALERT, RowMac
from ledger.storage.sql import Database, Tx

API_ROLES: tuple[str, ...] = ("investigator", "supervisor", "auditor", "prosecutor", "admin", "counsel")
assert set(API_ROLES) <= set(DOMAIN_ROLES)

TOKEN_RE = re.compile(r"^elt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
TOKEN_ID_RE = re.compile(r"^[0-9a-f]{16}$")
ACTOR_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
DURATION_RE = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_SELECT = (
    "SELECT t.token_id, t.token_sha256, t.actor, t.role, t.authority, t.created_at, t.expires_at, t.mac,"
    " r.revoked_at, r.mac AS revocation_mac FROM api_tokens t LEFT JOIN api_token_revocations r ON r.token_id = t.token_id"
)
NEEDS_IO = object()  # verify_cached: the answer needs a database read
Registry = Callable[[], Any]  # the checked key registry state (or None before the trust root)


class TokenPolicy(BaseSettings):
    """How long tokens may live (``EVIDENCE_LEDGER_API_TOKEN_MAX_DAYS``); the service's settings extend it."""

    model_config = SettingsConfigDict(env_prefix="EVIDENCE_LEDGER_API_", extra="ignore")

    token_max_days: int = Field(default=90, ge=1, description="longest lifetime of an API token")


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token: str) -> str:
    """The id part of a well-formed token (MalformedInputError otherwise)."""
    match = TOKEN_RE.fullmatch(token)
    if match is None:
        raise MalformedInputError("not an evidence-ledger token", code="BAD_ARGUMENT")
    return match.group(1)


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``3600s``."""
    match = DURATION_RE.fullmatch(text.strip())
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
    tampered: bool = False  # the row or its revocation failed the integrity check
    keyless: bool = False  # the actor holds no active key of the token's role (any more)

    def status_at(self, now: datetime) -> str:
        if self.tampered:
            return "tampered"
        if self.revoked_at is not None:
            return "revoked"
        if self.keyless:
            return "no_active_key"
        return "expired" if parse_time(self.expires_at) <= now else "active"

    def to_json(self, now: datetime) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("tampered", "keyless")}
        return {**data, "status": self.status_at(now)}


@dataclass(frozen=True)
class IssuedToken:
    record: TokenRecord
    token: str  # shown once


def _token_fields(row: Sequence[Any]) -> tuple[str, str, str, str, str | None, str, str]:
    return (str(row[0]), str(row[1]), str(row[2]), str(row[3]), None if row[4] is None else str(row[4]),
            str(row[5]), str(row[6]))


def check_token_row(mac: RowMac, row: Sequence[Any]) -> tuple[TokenRecord, str]:
    """(record, stored hash) of a row selected by ``_SELECT``; ``record.tampered`` when the token
    row or its revocation row is not one the service wrote."""
    fields = _token_fields(row)
    revoked_at = None if row[8] is None else str(row[8])
    ok = mac.valid("api_token", fields, row[7])
    if revoked_at is not None and not mac.valid("api_token_revocation", (fields[0], revoked_at), row[9]):
        ok = False
    token_id, stored, actor, role, authority, created_at, expires_at = fields
    record = TokenRecord(token_id, actor, role, authority, created_at, expires_at, revoked_at, tampered=not ok)
    return record, stored


def has_active_key(registry: Any, actor: str, role: str, authority: str | None, at: str) -> bool:
    """Whether ``actor`` holds an active registered key of ``role`` (and ``authority``) at ``at``."""
    if registry is None:
        return False
    # the actor's keys first, then their status: a status parses timestamps, and a registry holds every officer's key
    return any(
        k.actor == actor and k.role == role and k.authority == authority and k.status_at(at) == "active"
        for k in registry.keys
    )


class TokenStore:
    """Issue, check, revoke and list tokens. Thread-safe (each call is its own transaction)."""

    def __init__(
        self,
        db: Database,
        mac: RowMac,
        *,
        authorities: tuple[str, ...],
        registry: Registry,
        max_lifetime: timedelta = timedelta(days=90),
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.mac = mac
        self.authorities = authorities
        self.registry = registry
        self.max_lifetime = max_lifetime
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, TokenRecord, str]] = {}
        self._lock = threading.Lock()

    # -- issuing -----------------------------------------------------------------------------

    def issue(
        self, *, actor: str, role: str, authority: str | None, expires_in: timedelta, now: datetime
    ) -> IssuedToken:
        self._check_issue(actor, role, authority, expires_in)
        if not has_active_key(self.registry(), actor, role, authority, format_time(now)):
            raise AuthorizationError(
                f"no active registered key of role '{role}' belongs to the actor {actor!r}: check the actor's"
                " spelling against `evidence-ledger keys list`, or register the actor's key first"
                " (`evidence-ledger keys register`), then issue the token",
                code="NO_ACTIVE_KEY",
                role=role,
                actor=actor,
            )
        token_id = secrets.token_hex(8)
        token = f"elt_{token_id}_{secrets.token_urlsafe(32)}"
        fields = (token_id, token_sha256(token), actor, role, authority, format_time(now), format_time(now + expires_in))
        with self.db.write() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_id, token_sha256, actor, role, authority, created_at,"
                " expires_at, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*fields, self.mac.mac("api_token", fields)),
            )
        record = TokenRecord(token_id, actor, role, authority, fields[5], fields[6], None)
        return IssuedToken(record, token)

    def _check_issue(self, actor: str, role: str, authority: str | None, expires_in: timedelta) -> None:
        if role not in API_ROLES:
            raise MalformedInputError(f"role must be one of {', '.join(API_ROLES)}", code="BAD_ARGUMENT")
        if not ACTOR_RE.fullmatch(actor):
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
        """The token's record if it is well-formed, known, intact, unrevoked, unexpired and its actor
        still holds an active key of its role; else None."""
        match = TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        hit = self._cached(match.group(1))
        if hit is None:
            hit = self._lookup(match.group(1), now)
        return self._admit(hit, token, now)

    def verify_cached(self, token: str, *, now: datetime) -> TokenRecord | object | None:
        """Like :meth:`verify` but without I/O: NEEDS_IO when the answer needs a database read."""
        match = TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        hit = self._cached(match.group(1))
        return NEEDS_IO if hit is None else self._admit(hit, token, now)

    @staticmethod
    def _admit(hit: tuple[TokenRecord | None, str], token: str, now: datetime) -> TokenRecord | None:
        record, stored = hit
        if record is None or not hmac.compare_digest(stored.encode("ascii"), token_sha256(token).encode("ascii")):
            return None
        return record if record.status_at(now) == "active" else None

    def _cached(self, token_id: str) -> tuple[TokenRecord | None, str] | None:
        if self.cache_seconds <= 0:
            return None
        with self._lock:
            hit = self._cache.get(token_id)
        if hit is not None and hit[0] > self._monotonic():
            return hit[1], hit[2]
        return None

    def _lookup(self, token_id: str, now: datetime) -> tuple[TokenRecord | None, str]:
        with self.db.read() as tx:
            row = tx.one(f"{_SELECT} WHERE t.token_id = ?", (token_id,))
        if row is None:
            return None, "0" * 64
        record, stored = check_token_row(self.mac, row)
        if record.tampered:
            ALERT.error("token row failed its integrity check", extra={"refs": {"token_id": token_id}})
        elif not has_active_key(self.registry(), record.actor, record.role, record.authority, format_time(now)):
            record = TokenRecord(**{**record.__dict__, "keyless": True})
        if self.cache_seconds > 0:
            with self._lock:
                self._cache[token_id] = (self._monotonic() + self.cache_seconds, record, stored)
        return record, stored

    # -- administration ----------------------------------------------------------------------

    def revoke(self, token_id: str, *, now: datetime) -> TokenRecord:
        """Record a revocation (once; a second revocation keeps the first time)."""
        if not TOKEN_ID_RE.fullmatch(token_id):
            raise MalformedInputError("TOKEN_ID is 16 hex characters", code="BAD_ARGUMENT")
        revoked_at = format_time(now)
        with self.db.write() as tx:
            if tx.one("SELECT 1 FROM api_tokens WHERE token_id = ?", (token_id,)) is None:
                raise NotFoundError("no token with this id", code="TOKEN_NOT_FOUND", token_id=token_id)
            tx.execute(
                "INSERT INTO api_token_revocations (token_id, revoked_at, mac) VALUES (?, ?, ?)"
                " ON CONFLICT (token_id) DO NOTHING",
                (token_id, revoked_at, self.mac.mac("api_token_revocation", (token_id, revoked_at))),
            )
            row = tx.one(f"{_SELECT} WHERE t.token_id = ?", (token_id,))
        with self._lock:
            self._cache.pop(token_id, None)
        assert row is not None
        return check_token_row(self.mac, row)[0]

    def list(self) -> list[TokenRecord]:
        with self.db.read() as tx:
            return [check_token_row(self.mac, row)[0] for row in tx.query(f"{_SELECT} ORDER BY t.created_at, t.token_id")]


def tampered_tokens(tx: Tx, mac: RowMac) -> list[TokenRecord]:
    """Token rows (or their revocations) that fail the integrity check, and revocations of no token."""
    bad = [record for record in (check_token_row(mac, row)[0] for row in tx.query(_SELECT)) if record.tampered]
    orphans = tx.query(
        "SELECT r.token_id, r.revoked_at, r.mac FROM api_token_revocations r"
        " LEFT JOIN api_tokens t ON t.token_id = r.token_id WHERE t.token_id IS NULL"
    )
    for token_id, revoked_at, _ in orphans:
        bad.append(TokenRecord(str(token_id), "", "", None, "", "", str(revoked_at), tampered=True))
    return bad


def upgrade_tokens(db: Database, mac: RowMac) -> None:
    """Schema 1 → 2: seal the existing token rows and move their revocations to their own table.

    Run by ``db migrate`` (as the owner): whatever the rows hold then is what gets sealed, so audit
    the ledger before upgrading."""
    with db.write() as tx:
        columns = db.columns(tx, "api_tokens")
        if "revoked_at" not in columns:
            return
        if "mac" not in columns:
            tx.execute("ALTER TABLE api_tokens ADD COLUMN mac TEXT NOT NULL DEFAULT ''")
        rows = tx.query(
            "SELECT token_id, token_sha256, actor, role, authority, created_at, expires_at, revoked_at FROM api_tokens"
        )
        for row in rows:
            fields = _token_fields(row)
            tx.execute("UPDATE api_tokens SET mac = ? WHERE token_id = ?", (mac.mac("api_token", fields), fields[0]))
            if row[7] is not None:
                revoked_at = str(row[7])
                tx.execute(
                    "INSERT INTO api_token_revocations (token_id, revoked_at, mac) VALUES (?, ?, ?)"
                    " ON CONFLICT (token_id) DO NOTHING",
                    (fields[0], revoked_at, mac.mac("api_token_revocation", (fields[0], revoked_at))),
                )
        tx.execute("ALTER TABLE api_tokens DROP COLUMN revoked_at")
