"""Test helpers: registered actors and the Cambridge scenario's event bodies."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError
from ledger.append import Outcome, Receipt
from ledger.bootstrap import register_key
from ledger.envelope.keys import key_id, raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.settings import key_path
from ledger.store import Ledger

ROLES = {
    "investigator": ("Det. A. Rivera", None),
    "supervisor": ("Sgt. B. Chen", None),
    "prosecutor": ("ADA C. Okafor", "middlesex_da"),
    "ag_prosecutor": ("AAG D. Lin", "massachusetts_ag"),
    "auditor": ("Auditor E. Park", None),
}


@dataclass
class Actors:
    """Registered signing keys, one per role, and helpers to append as them."""

    ledger: Ledger
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)

    @classmethod
    def register(cls, ledger: Ledger) -> Actors:
        actors = cls(ledger)
        admin = key_path(ledger.data_dir, "admin")
        for name, (actor, authority) in ROLES.items():
            key = Ed25519PrivateKey.generate()
            role = "prosecutor" if name == "ag_prosecutor" else name
            register_key(ledger, admin, raw_public_key(key), actor=actor, role=role, authority=authority)
            actors.keys[name] = key
        return actors

    def envelope(
        self,
        who: str,
        case_id: str,
        event_type: str,
        body: dict[str, Any],
        *,
        seq: int | None = None,
        prev: str | bool | None = False,
        event_id: str | None = None,
    ) -> bytes:
        version, head = self.ledger.case_head(case_id)
        return build_envelope(
            origin=self.ledger.origin,
            case_id=case_id,
            event_type=event_type,
            body=body,
            key=self.keys[who],
            seq=version + 1 if seq is None else seq,
            prev=head if prev is False else prev,  # type: ignore[arg-type]
            occurred_at=self.ledger.clock(),
            event_id=event_id,
        )

    def append(self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any) -> Outcome:
        (outcome,) = self.ledger.append([self.envelope(who, case_id, event_type, body, **kw)])
        return outcome

    def ok(self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any) -> Receipt:
        outcome = self.append(who, case_id, event_type, body, **kw)
        if isinstance(outcome, LedgerError):
            raise AssertionError(f"{event_type} refused: {outcome.code}: {outcome.message}")
        return outcome

    def refused(
        self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any
    ) -> LedgerError:
        outcome = self.append(who, case_id, event_type, body, **kw)
        assert isinstance(outcome, LedgerError), f"{event_type} was accepted"
        return outcome

    def key_id(self, who: str) -> str:
        return key_id(self.keys[who])

    def revoke(self, who: str, *, reason: str = "left the unit") -> None:
        """Revoke ``who``'s key with the ledger's demo-mode admin key (not as compromised)."""
        from ledger.bootstrap import revoke_key
        from ledger.settings import key_path

        revoke_key(
            self.ledger, key_path(self.ledger.data_dir, "admin"), self.key_id(who), reason=reason,
            compromised_since=None,
        )


def new_case_id() -> str:
    return str(uuid.uuid4())


FOOTAGE_BYTES = b"body-worn camera footage: federal officers damaging a parked car" * 100
FOOTAGE_SHA = hashlib.sha256(FOOTAGE_BYTES).hexdigest()
REDACTED_BYTES = FOOTAGE_BYTES.replace(b"parked car", b"[REDACTED]")
REDACTED_SHA = hashlib.sha256(REDACTED_BYTES).hexdigest()


_CASE_NUMBERS = itertools.count(1)


def case_opened(number: str | None = None) -> dict[str, Any]:
    """A CaseOpened body. Case numbers are unique in a ledger (``DUPLICATE_CASE_NUMBER``): without
    ``number``, each call gets a number no other call of the test process got."""
    if number is None:
        number = f"CPD-2026-A{next(_CASE_NUMBERS):04d}"  # no test spells a number so
    return {
        "case_number": number,
        "category": "property_damage",
        "summary": "Vehicle damaged during a federal operation",
    }


def report_received(sealed: dict[str, str] | None) -> dict[str, Any]:
    return {
        "report_id": "rpt-1",
        "channel": "911_call",
        "received_at": "2026-02-05T17:02:00Z",
        "location": "Central Square (block level)",
        "observed_agency": "ICE",
        "narrative": "Caller saw masked agents break a car window.",
        "reporter": sealed,
    }


def incident_documented() -> dict[str, Any]:
    return {
        "incident_id": "inc-1",
        "occurred_from": "2026-02-05T16:55:00Z",
        "occurred_to": "2026-02-05T17:10:00Z",
        "location": "Massachusetts Ave at Prospect St",
        "narrative": "Officers documented the scene.",
        "conduct": ["property_damage"],
        "federal_officials": [
            {
                "agency": "ICE",
                "count": 4,
                "identifiable_uniform": False,
                "face_covered": True,
                "body_camera_worn": False,
                "identified_themselves": False,
            }
        ],
    }


def footage_captured(
    footage_id: str = "ftg-1", *, stored: bool = False, sha: str = FOOTAGE_SHA
) -> dict[str, Any]:
    return {
        "footage_id": footage_id,
        "source": "body_worn_camera",
        "device_id": "BWC-0042",
        "recorded_from": "2026-02-05T16:58:00Z",
        "recorded_to": "2026-02-05T17:06:00Z",
        "sha256": sha,
        "size_bytes": len(FOOTAGE_BYTES),
        "media_type": "video/mp4",
        "depicts": ["property_damage_by_federal_officials"],
        "custodian": "CPD Evidence Unit",
        "stored": stored,
    }


def hold_placed(hold_id: str = "hold-1", scope: Any = "case") -> dict[str, Any]:
    return {
        "hold_id": hold_id,
        "scope": scope,
        "authority": "middlesex_da",
        "reason": "Active DA investigation",
    }


def derivative_created() -> dict[str, Any]:
    return {
        "derivative_id": "ftg-1-redacted",
        "footage_id": "ftg-1",
        "sha256": REDACTED_SHA,
        "size_bytes": len(REDACTED_BYTES),
        "kind": "redaction",
        "description": "Bystander faces blurred",
    }


def footage_released(derivative: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "footage_id": "ftg-1",
        "sha256": REDACTED_SHA if derivative else FOOTAGE_SHA,
        "basis": "executive_order",
        "channel": "city website",
        "url": "https://www.cambridgema.gov/police/releases/ftg-1",
    }
    if derivative:
        body["derivative_id"] = "ftg-1-redacted"
    return body


def referral_made() -> dict[str, Any]:
    return {
        "referral_id": "ref-1",
        "authority": "middlesex_da",
        "basis": "Property damage by federal officers",
    }


def run_cambridge_scenario(actors: Actors, case_id: str, sealed: dict[str, str] | None) -> list[Receipt]:
    """The full story; asserts each refusal it expects on the way."""
    receipts = [
        actors.ok("investigator", case_id, "CaseOpened", case_opened()),
        actors.ok("investigator", case_id, "ReportReceived", report_received(sealed)),
        actors.ok("investigator", case_id, "IncidentDocumented", incident_documented()),
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured()),
        actors.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed()),
    ]
    refused = actors.refused("supervisor", case_id, "FootageReleased", footage_released(derivative=False))
    assert refused.code == "RELEASE_UNDER_HOLD" and refused.refs.get("hold_id") == "hold-1"
    receipts += [
        actors.ok(
            "supervisor", case_id, "InvestigationHoldLifted", {"hold_id": "hold-1", "reason": "DA cleared"}
        ),
        actors.ok("investigator", case_id, "FootageDerivativeCreated", derivative_created()),
        actors.ok("supervisor", case_id, "FootageReleased", footage_released()),
        actors.ok("investigator", case_id, "ReferralMade", referral_made()),
        actors.ok(
            "prosecutor", case_id, "ReferralAcknowledged", {"referral_id": "ref-1", "note": "Received"}
        ),
        actors.ok("supervisor", case_id, "CaseClosed", {"disposition": "referred"}),
    ]
    return receipts
