"""Building and signing statements for the next position of a case (used by the CLI and the client)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.envelope.canonical import format_time
from ledger.envelope.dsse import Statement, sign_statement
from ledger.envelope.keys import key_id


def build_envelope(
    *,
    origin: str,
    case_id: str,
    event_type: str,
    body: dict[str, Any],
    key: Ed25519PrivateKey,
    seq: int,
    prev: str | None,
    occurred_at: datetime,
    event_id: str | None = None,
    type_version: int = 1,
) -> bytes:
    statement = Statement(
        ledger=origin,
        case_id=case_id,
        event_id=event_id or str(uuid.uuid4()),
        seq=seq,
        prev=prev,
        type=event_type,
        type_version=type_version,
        occurred_at=format_time(occurred_at),
        signer=key_id(key),
        body=body,
    )
    return sign_statement(statement, key)
