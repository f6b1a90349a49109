"""The access log's entry: who read what, when, with which outcome (docs/access-log.md, docs/formats.md §9).

An entry is the leaf of the access log, RFC 8785 canonical JSON of exactly these fields:

    {"action": "case.read", "actor": "Det. A. Rivera", "case_id": "<uuid>" | null, "code": null | "<CODE>",
     "index": n, "item": null | "<sha256 | sealed_ref | id>", "outcome": "allowed" | "denied",
     "recorded_at": "<RFC 3339 UTC>", "request_id": "<id>" | null, "role": "<role>" | null,
     "token_id": "<token id>" | null, "v": 1}

Only identifiers: never free text (a download's purpose, a narrative) or personal data. An
unauthenticated caller is ``actor = "anonymous"`` with no role and no token id.

Importable without any database driver: the offline verifier parses entries with it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from domain.errors import MalformedInputError
from ledger.envelope.canonical import canonical, parse_canonical, parse_time

ENTRY_VERSION = 1
ORIGIN_SUFFIX = "/access"
ANONYMOUS = "anonymous"
ALLOWED, DENIED = "allowed", "denied"
OUTCOMES = (ALLOWED, DENIED)

#: What can be recorded. A new action is a new entry here (and a line in docs/access-log.md).
ACTIONS = frozenset(
    {
        "cases.list",  # GET /v1/cases
        "case.read",  # GET /v1/cases/{id} (also as_of / at_index)
        "case.events",  # GET /v1/cases/{id}/events
        "case.timeline",  # GET /v1/cases/{id}/timeline
        "case.custody",  # GET /v1/cases/{id}/footage/{footage_id}/custody (item = the footage id)
        "case.bundle",  # GET /v1/cases/{id}/bundle
        "evidence.download",  # GET /v1/evidence/{sha256}, and each media file of a bundle
        "sealed.read",  # a sealed record disclosed (item = sealed_ref)
        "log.envelopes",  # GET /v1/log/envelopes (every case's envelopes)
        "access_log.read",  # GET /v1/access-log
        "access_log.checkpoint",  # GET /v1/access-log/checkpoint
        "access_log.proof",  # GET /v1/access-log/proof/*
    }
)
ENTRY_KEYS = frozenset(
    {"action", "actor", "case_id", "code", "index", "item", "outcome", "recorded_at", "request_id", "role",
     "token_id", "v"}
)
MAX_ACTOR = 256
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ITEM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_WORD = re.compile(r"[a-z][a-z_]{0,31}")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def access_origin(origin: str) -> str:
    """The origin line of the access log's checkpoints: never the case log's, so an access checkpoint
    can never pass for a case-log checkpoint (nor the other way round)."""
    return origin + ORIGIN_SUFFIX


@dataclass(frozen=True)
class AccessRecord:
    """What a route records; the log adds the index and the time (``entry_bytes``)."""

    action: str
    actor: str = ANONYMOUS
    role: str | None = None
    token_id: str | None = None
    case_id: str | None = None
    item: str | None = None
    outcome: str = ALLOWED
    code: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        check_record(self)


@dataclass(frozen=True)
class AccessEntry:
    """A parsed entry: the record, its index in the access log and the time it was recorded."""

    record: AccessRecord
    index: int
    recorded_at: str

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "action": r.action,
            "actor": r.actor,
            "case_id": r.case_id,
            "code": r.code,
            "index": self.index,
            "item": r.item,
            "outcome": r.outcome,
            "recorded_at": self.recorded_at,
            "request_id": r.request_id,
            "role": r.role,
            "token_id": r.token_id,
            "v": ENTRY_VERSION,
        }


def _bad(message: str) -> MalformedInputError:
    return MalformedInputError(f"access entry: {message}", code="BAD_ACCESS_ENTRY")


def _optional(value: object, pattern: re.Pattern[str], what: str) -> None:
    if value is not None and (not isinstance(value, str) or pattern.fullmatch(value) is None):
        raise _bad(f"{what} is not a well-formed identifier")


def check_record(r: AccessRecord) -> None:
    """Raise MalformedInputError (BAD_ACCESS_ENTRY) unless every field is a well-formed identifier."""
    if r.action not in ACTIONS:
        raise _bad("unknown action")
    if r.outcome not in OUTCOMES:
        raise _bad("outcome is allowed or denied")
    if (r.outcome == DENIED) != (r.code is not None):
        raise _bad("a denial carries its problem code, an allowed read none")
    actor = r.actor
    if (
        not isinstance(actor, str)
        or not 0 < len(actor) <= MAX_ACTOR
        or any(unicodedata.category(ch).startswith("C") for ch in actor)
    ):
        raise _bad(f"actor is 1-{MAX_ACTOR} characters without control characters")
    _optional(r.case_id, UUID_PATTERN, "case_id")
    _optional(r.item, ITEM_PATTERN, "item")
    _optional(r.code, _CODE, "code")
    _optional(r.role, _WORD, "role")
    _optional(r.token_id, _TOKEN_ID, "token_id")
    _optional(r.request_id, _REQUEST_ID, "request_id")


def entry_bytes(record: AccessRecord, index: int, recorded_at: str) -> bytes:
    """The exact leaf bytes of ``record`` at ``index``, recorded at ``recorded_at``."""
    return canonical(AccessEntry(record, index, recorded_at).to_json())


def parse_entry(raw: bytes) -> AccessEntry:
    """Strictly parse stored entry bytes (canonical JSON of exactly the entry's fields, version 1)."""
    data = parse_canonical(raw, what="access entry")
    if not isinstance(data, dict) or set(data) != ENTRY_KEYS:
        raise _bad("must hold exactly " + ", ".join(sorted(ENTRY_KEYS)))
    if data["v"] != ENTRY_VERSION or type(data["v"]) is not int:
        raise _bad(f"version must be {ENTRY_VERSION}")
    index = data["index"]
    if type(index) is not int or index < 0:
        raise _bad("index must be an integer >= 0")
    when = data["recorded_at"]
    if not isinstance(when, str):
        raise _bad("recorded_at must be an RFC 3339 time")
    parse_time(when, field="recorded_at")
    fields = {k: data[k] for k in ENTRY_KEYS - {"index", "recorded_at", "v"}}
    if any(value is not None and not isinstance(value, str) for value in fields.values()):
        raise _bad("every field but index and v is a string or null")
    if fields["actor"] is None or fields["action"] is None or fields["outcome"] is None:
        raise _bad("action, actor and outcome are required")
    return AccessEntry(AccessRecord(**fields), index, when)
