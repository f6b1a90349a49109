"""The eventsourcing application that persists envelopes.

Each accepted DSSE envelope is one stored event: ``originator_id`` = case id (the key registry uses
the nil UUID), ``originator_version`` = the statement's ``seq``, ``topic`` = ``"<type>/v<version>"``
and ``state`` = the envelope bytes exactly as accepted (canonical JSON, readable with plain SQL;
never compressed, encrypted or re-encoded). The library's primary key on (originator_id,
originator_version) is what makes two racing writers on one case conflict.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent

from ledger.settings import DatabaseTarget


@dataclass(frozen=True, slots=True)
class RecordedEnvelope:
    """What the ledger stores for one event."""

    case_id: str
    seq: int
    topic: str
    envelope: bytes


class EnvelopeMapper(Mapper[uuid.UUID]):
    """Maps envelopes to stored events verbatim (no transcoding, compression or cipher)."""

    def __init__(self) -> None:
        super().__init__(transcoder=JSONTranscoder())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if not isinstance(domain_event, RecordedEnvelope):
            raise TypeError("the ledger stores RecordedEnvelope objects only")
        return StoredEvent(
            originator_id=uuid.UUID(domain_event.case_id),
            originator_version=domain_event.seq,
            topic=domain_event.topic,
            state=domain_event.envelope,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return RecordedEnvelope(
            case_id=str(stored_event.originator_id),
            seq=stored_event.originator_version,
            topic=stored_event.topic,
            envelope=bytes(stored_event.state),
        )


class LedgerApplication(Application[uuid.UUID]):
    """Owns the connection pool, the events table and the mapper."""

    name = "ledger"

    def construct_mapper(self) -> Mapper[uuid.UUID]:
        return EnvelopeMapper()


def application_env(
    target: DatabaseTarget, *, create_tables: bool, pool_size: int, lock_timeout: int
) -> dict[str, str]:
    env: dict[str, str] = {"CREATE_TABLE": "y" if create_tables else "n", "IS_SNAPSHOTTING_ENABLED": "n"}
    if target.kind == "sqlite":
        assert target.sqlite_path is not None
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(target.sqlite_path),
            SQLITE_LOCK_TIMEOUT="30",
        )
    else:
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=target.dbname,
            POSTGRES_HOST=target.host,
            POSTGRES_PORT=str(target.port),
            POSTGRES_USER=target.user,
            POSTGRES_PASSWORD=target.password,
            POSTGRES_SCHEMA=target.schema,
            POSTGRES_POOL_SIZE=str(pool_size),
            POSTGRES_MAX_OVERFLOW=str(pool_size),
            POSTGRES_LOCK_TIMEOUT=str(lock_timeout),
            POSTGRES_CONNECT_TIMEOUT="10",
            POSTGRES_PRE_PING="n",  # a dead connection fails its transaction (503); no ping per checkout
        )
    return env
