"""Department keys, tokens and signed case histories for the load simulation.

Every department has its own Ed25519 signing key (registered to its own actor, ``<code>-investigator``),
its own bearer token and its own case numbers (``<code>-2026-<n>``). Each case is the investigator's part
of the modelled history, 12 events signed in order and chained: opened, report, documentation, three
footage captures, their three custody transfers to the evidence unit, a redacted derivative, a hold,
a referral. (The supervisor's and prosecutor's events of the model, and the server's EvidenceAccessed
events, are envelopes of the same size through the same append path; they would need more keys per
department and nothing else.)
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.bootstrap import init_data_dir, register_key
from ledger.envelope.keys import raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.settings import Settings, key_path
from ledger.store import Ledger
from ledger.tokens import TokenStore
from ops.sim.model import Department

#: One log hosts the simulated departments (docs/scaling.md says why); its origin is the state's.
ORIGIN = "sim.mass.example/evidence-ledger"
EVENTS_PER_SIM_CASE = 12


@dataclass(frozen=True)
class Signer:
    department: Department
    key: Ed25519PrivateKey
    token: str

    @property
    def actor(self) -> str:
        return f"{self.department.code}-investigator"


@dataclass(frozen=True)
class Case:
    case_id: str
    signer: Signer
    envelopes: list[bytes]


def prepare(data_dir: Path, database_url: str | None, depts: list[Department]) -> tuple[Settings, list[Signer]]:
    """Initialise the ledger and register one investigator key and token per department."""
    settings = Settings(data_dir=data_dir, database_url=database_url)
    now = datetime.now(UTC)
    init_data_dir(data_dir, ORIGIN, settings, now=now)
    signers = []
    with Ledger(settings) as ledger:
        keys = {}
        for dept in depts:
            key = Ed25519PrivateKey.generate()
            register_key(ledger, key_path(data_dir, "admin"), raw_public_key(key),
                         actor=f"{dept.code}-investigator", role="investigator", authority=None)
            keys[dept.code] = key
        store = TokenStore(ledger.db, ledger.mac, authorities=tuple(settings.authorities),
                           registry=ledger.registry_state, max_lifetime=timedelta(days=2))
        for dept in depts:
            issued = store.issue(actor=f"{dept.code}-investigator", role="investigator", authority=None,
                                 expires_in=timedelta(days=1), now=datetime.now(UTC))
            signers.append(Signer(dept, keys[dept.code], issued.token))
    return settings, signers


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _history(code: str, n: int, at: datetime, rng: random.Random) -> Iterator[tuple[str, dict[str, Any]]]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (at + timedelta(minutes=18)).strftime("%Y-%m-%dT%H:%M:%SZ")
    yield "CaseOpened", {
        "case_number": f"{code}-2026-{n:06d}",
        "category": "observed_federal_activity",
        "summary": "Unmarked vehicles and plain-clothes agents stopped a van near the square; units responded.",
    }
    yield "ReportReceived", {
        "report_id": f"{code}-R-{n:06d}",
        "channel": "911_call",
        "received_at": stamp,
        "location": "Main St at the square, north side, in front of the public library",
        "observed_agency": "ICE ERO",
        "narrative": "Caller reported masked officers near the square at about 2:30 pm; units arrived at 2:41 pm.",
        "reporter": None,
    }
    yield "IncidentDocumented", {
        "incident_id": f"{code}-I-{n:06d}",
        "occurred_from": stamp,
        "occurred_to": later,
        "location": "Main St at the square, north side, in front of the public library",
        "narrative": "Four agents in plain clothes stopped a grey van; three wore vests marked POLICE and"
                     " none displayed a name or badge number. Officers arrived within 4 minutes.",
        "conduct": ["other"],
        "federal_officials": [{
            "agency": "ICE ERO", "count": 4, "identifiable_uniform": False, "face_covered": True,
            "body_camera_worn": False, "identified_themselves": None,
        }],
    }
    footage = [f"{code}-F-{n:06d}-{i}" for i in range(3)]
    for i, (footage_id, source) in enumerate(zip(footage, ["body_worn_camera", "body_worn_camera",
                                                           "city_surveillance_camera"], strict=True)):
        yield "FootageCaptured", {
            "footage_id": footage_id,
            "source": source,
            "device_id": f"{code}-BWC-{i:04d}",
            "recorded_from": stamp,
            "recorded_to": later,
            "sha256": _hex(rng),
            "size_bytes": rng.randrange(50_000_000, 900_000_000),
            "media_type": "video/mp4",
            "depicts": ["other"],
            "custodian": f"Officer, device {code}-BWC-{i:04d}",
            "stored": False,
        }
    for i, footage_id in enumerate(footage):
        yield "CustodyTransferred", {
            "footage_id": footage_id,
            "from_custodian": f"Officer, device {code}-BWC-{i:04d}",
            "to_custodian": "Evidence Unit",
            "purpose": "Docked at shift change; copied to the evidence vault, shelf B-17.",
        }
    yield "FootageDerivativeCreated", {
        "derivative_id": f"{footage[0]}-redacted",
        "footage_id": footage[0],
        "sha256": _hex(rng),
        "size_bytes": rng.randrange(10_000_000, 100_000_000),
        "kind": "redaction",
        "description": "Redacted copy blurs the faces of 7 bystanders and the plate of 1 private vehicle.",
    }
    yield "InvestigationHoldPlaced", {
        "hold_id": f"{code}-H-{n:06d}",
        "scope": "case",
        "authority": "middlesex_da",
        "reason": "Hold placed by the district attorney pending review of the incident.",
    }
    yield "ReferralMade", {
        "referral_id": f"{code}-REF-{n:06d}",
        "authority": "massachusetts_ag",
        "basis": "Referral to the Attorney General's Civil Rights Division for review.",
    }


def make_cases(signers: list[Signer], count: int, *, first: int, seed: int) -> list[Case]:
    """``count`` cases, each department's share in proportion to its population (drawn with ``seed``);
    case numbers of department D start at ``first`` so that runs never reuse one."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
    weights = [s.department.population for s in signers]
    numbers: dict[str, int] = {}
    start = datetime.now(UTC) - timedelta(days=1)
    cases: list[Case] = []
    for signer in rng.choices(signers, weights=weights, k=count):
        code = signer.department.code
        n = numbers[code] = numbers.get(code, first) + 1
        case_id = str(uuid.uuid4())
        prev = None
        envelopes = []
        at = start + timedelta(seconds=len(cases))
        for seq, (kind, body) in enumerate(_history(code, n, at, rng), 1):
            raw = build_envelope(origin=ORIGIN, case_id=case_id, event_type=kind, body=body, key=signer.key,
                                 seq=seq, prev=prev, occurred_at=at + timedelta(minutes=20, microseconds=seq))
            prev = hashlib.sha256(raw).hexdigest()
            envelopes.append(raw)
        cases.append(Case(case_id, signer, envelopes))
    return cases
