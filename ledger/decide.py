"""Deciding one verified statement: shared by the append path and the offline verifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.context import DomainConfig, EventContext
from domain.events import Event, parse_body
from domain.streams import apply_to_stream
from ledger.envelope.dsse import REGISTRY_CASE_ID, Statement


@dataclass(frozen=True)
class Signer:
    """Who signed a statement, as the key registry (or the trust root's own body) says."""

    actor: str
    role: str
    authority: str | None


def trust_root_signer(statement: Statement) -> Signer | None:
    """The signer of the registry's first event, which registers its own key; None if it is not one."""
    body = statement.body
    if (
        statement.case_id != REGISTRY_CASE_ID
        or statement.type != "KeyRegistered"
        or body.get("key_id") != statement.signer
    ):
        return None
    return Signer(str(body.get("actor")), str(body.get("role")), None)


def decide(
    state: Any, statement: Statement, signer: Any, config: DomainConfig, *, leaf_index: int | None = None
) -> tuple[Any, Event, EventContext]:
    """Parse the body and apply the stream's rules: (new state, event, context); raises domain errors."""
    event = parse_body(statement.type, statement.type_version, statement.body)
    ctx = EventContext(
        case_id=statement.case_id,
        seq=statement.seq,
        occurred_at=statement.occurred_at,
        signer_key_id=statement.signer,
        actor=signer.actor,
        role=signer.role,
        authority=signer.authority,
        leaf_index=leaf_index,
    )
    return apply_to_stream(state, event, ctx, config), event, ctx
