"""Shared builders for the domain tests (no tests here)."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from domain.case import CaseState, apply
from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.errors import LedgerError
from domain.events import Event, parse_body
from domain.projections import custody_entry
from domain.registry import KeyRegistryState, apply_registry

CANARY = "CANARY-7f3a"
CASE_ID = "9b2f6c1e-2d4a-4c8e-9f00-1a2b3c4d5e6f"
SIGNER = "5" * 64
FOOTAGE_SHA = "ab" * 32
DERIVATIVE_SHA = "cd" * 32
OTHER_SHA = "ef" * 32


def ts(n: int) -> str:
    """A deterministic timestamp ``n`` minutes after 2025-06-01T12:00:00Z."""
    return f"2025-06-{1 + n // 1440:02d}T{12 + (n // 60) % 12:02d}:{n % 60:02d}:00Z"


def key(n: int) -> tuple[str, str]:
    """(key_id, base64 public key) of a made-up 32-byte key."""
    raw = bytes([n]) * 32
    return hashlib.sha256(raw).hexdigest(), base64.b64encode(raw).decode("ascii")


def ctx(
    seq: int,
    *,
    role: str = "supervisor",
    authority: str | None = None,
    case_id: str = CASE_ID,
    actor: str = "sgt-example",
    signer: str = SIGNER,
    at: str | None = None,
    leaf_index: int | None = None,
) -> EventContext:
    return EventContext(
        case_id=case_id,
        seq=seq,
        occurred_at=at or ts(seq),
        signer_key_id=signer,
        actor=actor,
        role=role,
        authority=authority,
        leaf_index=leaf_index,
    )


_OFFICIALS = {
    "agency": "ICE",
    "count": 4,
    "identifiable_uniform": False,
    "face_covered": True,
    "body_camera_worn": False,
    "identified_themselves": None,
}

BODIES: dict[str, dict[str, Any]] = {
    "CaseOpened": {"case_number": "CPD-2025-0001", "category": "property_damage", "summary": "Car window"},
    "ReportReceived": {
        "report_id": "rep-1",
        "channel": "911_call",
        "received_at": ts(1),
        "location": "Central Square",
        "observed_agency": "ICE",
        "narrative": "Caller saw agents break a car window.",
        "reporter": {"sealed_ref": "sealed:0001", "commitment": "12" * 32},
    },
    "IncidentDocumented": {
        "incident_id": "inc-1",
        "occurred_from": ts(0),
        "occurred_to": ts(5),
        "location": "Central Square",
        "narrative": "Agents smashed a window.",
        "conduct": ["property_damage"],
        "federal_officials": [_OFFICIALS],
    },
    "FootageCaptured": {
        "footage_id": "fp-1",
        "source": "body_worn_camera",
        "device_id": "bwc-0042",
        "recorded_from": ts(0),
        "recorded_to": ts(4),
        "sha256": FOOTAGE_SHA,
        "size_bytes": 1048576,
        "media_type": "video/mp4",
        "depicts": ["property_damage_by_federal_officials"],
        "custodian": "CPD Evidence Unit",
        "stored": True,
    },
    "CustodyTransferred": {
        "footage_id": "fp-1",
        "from_custodian": "CPD Evidence Unit",
        "to_custodian": "CPD Video Lab",
        "purpose": "redaction",
    },
    "FootageDerivativeCreated": {
        "derivative_id": "dv-1",
        "footage_id": "fp-1",
        "sha256": DERIVATIVE_SHA,
        "size_bytes": 900000,
        "kind": "redaction",
        "description": "Bystander faces blurred",
    },
    "InvestigationHoldPlaced": {
        "hold_id": "hold-1",
        "scope": "case",
        "authority": "middlesex_da",
        "reason": "Active investigation",
    },
    "InvestigationHoldLifted": {"hold_id": "hold-1", "reason": "Investigation concluded"},
    "FootageReleased": {
        "footage_id": "fp-1",
        "sha256": FOOTAGE_SHA,
        "basis": "executive_order",
        "channel": "cambridgema.gov",
    },
    "ReferralMade": {"referral_id": "ref-1", "authority": "middlesex_da", "basis": "Malicious destruction"},
    "ReferralAcknowledged": {"referral_id": "ref-1", "note": "Received"},
    "CaseClosed": {"disposition": "Referred"},
    "CaseReopened": {"reason": "New evidence"},
    "EvidenceAccessed": {"footage_id": "fp-1", "actor": "det-example", "purpose": "review"},
    "SealedDisclosureRequested": {
        "request_id": "dreq-1",
        "sealed_ref": "sealed:0001",
        "purpose": "Witness interview ordered by the court",
        "legal_basis": "Summons 2025-17",
    },
    "SealedDisclosureApproved": {"request_id": "dreq-1"},
    "SealedRecordDisclosed": {"request_id": "dreq-1", "sealed_ref": "sealed:0001", "approvers": ["counsel-example"]},
    "SealedDisclosureRefused": {
        "request_id": "dreq-1",
        "sealed_ref": "sealed:0001",
        "attempted": "SealedDisclosureApproved",
        "actor": "sgt-example",
        "code": "SAME_PERSON",
    },
    "SealedRecordShredded": {"sealed_ref": "sealed:0001", "reason": "Retention period ended"},
    "KeyRegistered": {
        "key_id": key(1)[0],
        "public_key": key(1)[1],
        "actor": "admin-example",
        "role": "admin",
        "valid_from": ts(0),
    },
    "KeyRevoked": {"key_id": key(1)[0], "reason": "rotation"},
}

#: the role that may append each event type
ROLE_FOR: dict[str, str] = {
    "ReferralAcknowledged": "prosecutor",
    "EvidenceAccessed": "service",
    "SealedDisclosureApproved": "counsel",
    "SealedDisclosureRefused": "service",
    "KeyRegistered": "admin",
    "KeyRevoked": "admin",
}


#: pass as an override to drop a key from a body
DROP: Any = object()


def body(type_name: str, **overrides: Any) -> dict[str, Any]:
    out = copy.deepcopy(BODIES[type_name])
    for name, value in overrides.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def ev(type_name: str, **overrides: Any) -> Event:
    return parse_body(type_name, 1, body(type_name, **overrides))


class Fold:
    """Applies events to one case with increasing seq, the right role by default."""

    def __init__(self, config: DomainConfig | None = None, open_case: bool = True) -> None:
        self.state: CaseState | None = None
        self.seq = 0
        self.config = config
        #: (footage id, link) of every custody link the accepted events added, in order
        self.custody: list[tuple[str, dict[str, Any]]] = []
        if open_case:
            self.add("CaseOpened")

    def add(
        self,
        type_name: str,
        *,
        role: str | None = None,
        ctx_authority: str | None = None,
        actor: str = "sgt-example",
        at: str | None = None,
        **overrides: Any,
    ) -> CaseState:
        """Append ``type_name`` (body overrides as keywords); ``ctx_authority``, ``actor`` and ``at``
        are the signer's authority, the signer and the statement time (default ``ts(seq)``)."""
        role = role or ROLE_FOR.get(type_name, "supervisor")
        if role == "prosecutor" and ctx_authority is None:
            ctx_authority = "middlesex_da"
        c = ctx(self.seq, role=role, authority=ctx_authority, actor=actor, at=at)
        event = ev(type_name, **overrides)
        self.state = apply(self.state, event, c, self.config)
        link = custody_entry(event, c)
        if link is not None:  # numbered as the ledger numbers its custody rows
            footage = self.state.footage_by_id(link[0])
            assert footage is not None
            self.custody.append((link[0], {**link[1], "step": footage.custody_steps}))
        self.seq += 1
        return self.state

    def refused(self, type_name: str, **kwargs: Any) -> LedgerError:
        before = self.state
        with pytest.raises(LedgerError) as info:
            self.add(type_name, **kwargs)
        assert self.state is before
        return info.value


def registry_ctx(seq: int, signer: str, at: str | None = None) -> EventContext:
    return ctx(seq, role="admin", case_id=REGISTRY_STREAM_ID, signer=signer, at=at)


def registry_with_root() -> KeyRegistryState:
    root_id, _ = key(1)
    return apply_registry(None, ev("KeyRegistered"), registry_ctx(0, root_id))
