"""What the ledger tells the domain about an event, and the domain's configuration.

The ledger verifies seq, prev hash and signature, looks the signer up in the key registry, and
passes the result here. The domain never reads a clock: ``occurred_at`` is the ledger's timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidEventError
from domain.fields import ID_RE, SHA256_RE, is_timestamp

#: the stream id of the key registry (never a case)
REGISTRY_STREAM_ID = "00000000-0000-0000-0000-000000000000"

DEFAULT_AUTHORITIES: tuple[str, ...] = ("middlesex_da", "massachusetts_ag")
#: how long after a disclosure request it may be approved and the record disclosed (24 hours)
DEFAULT_DISCLOSURE_WINDOW_SECONDS = 24 * 3600


def _bad_context(name: str, expectation: str) -> InvalidEventError:
    return InvalidEventError(
        f"event context {name}: expected {expectation}", code="INVALID_CONTEXT", field=name
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class EventContext:
    case_id: str
    seq: int
    occurred_at: str
    signer_key_id: str
    actor: str
    role: str
    authority: str | None = None
    leaf_index: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.case_id, str) or ID_RE.fullmatch(self.case_id) is None:
            raise _bad_context("case_id", "an id")
        if type(self.seq) is not int or self.seq < 0:
            raise _bad_context("seq", "an integer >= 0")
        if not is_timestamp(self.occurred_at):
            raise _bad_context("occurred_at", "an RFC 3339 UTC timestamp ending in 'Z'")
        if not isinstance(self.signer_key_id, str) or SHA256_RE.fullmatch(self.signer_key_id) is None:
            raise _bad_context("signer_key_id", "64 lowercase hex characters")
        if not isinstance(self.actor, str) or not isinstance(self.role, str):
            raise _bad_context("actor/role", "strings")
        if self.authority is not None and not isinstance(self.authority, str):
            raise _bad_context("authority", "a string or None")
        if self.leaf_index is not None and (type(self.leaf_index) is not int or self.leaf_index < 0):
            raise _bad_context("leaf_index", "an integer >= 0 or None")


@dataclass(frozen=True, kw_only=True, slots=True)
class DomainConfig:
    #: authorities that referrals may go to and prosecutor keys may belong to
    authorities: tuple[str, ...] = DEFAULT_AUTHORITIES
    #: approvals and the disclosure must come within this many seconds of the request
    disclosure_window_seconds: int = DEFAULT_DISCLOSURE_WINDOW_SECONDS
