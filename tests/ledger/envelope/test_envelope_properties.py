"""Property tests: envelope tamper-evidence, canonical JSON round trips, PAE injectivity, replay.

(a) any single-byte change to a stored envelope is refused by parse + verify;
(b) ``parse_strict`` and ``canonical`` are inverse on I-JSON values (integers within ±(2**53-1));
(c) PAE is injective over (payload type, payload) pairs;
(d) rebuilding the read models from the log is deterministic and equals the incremental result
    (SQLite only; one ledger per test, new cases per example).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import MalformedInputError, VerificationError
from domain.events import DEPICTS
from ledger.envelope.canonical import MAX_SAFE_INTEGER, canonical, parse_strict
from ledger.envelope.dsse import PAYLOAD_TYPE, Statement, pae, parse_envelope, sign_statement, verify_envelope
from ledger.envelope.keys import key_id, load_private_key
from ledger.replay import rebuild
from ledger.settings import key_path
from ledger.store import Ledger
from tests.support.cases import (
    Actors,
    case_opened,
    footage_captured,
    hold_placed,
    incident_documented,
    new_case_id,
)


@pytest.fixture
def backend() -> str:
    """Override conftest's backend: these properties run on SQLite only (speed)."""
    return "sqlite"


# --------------------------------------------------------------------------- (a) tamper evidence

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test_envelope_properties").digest())
STORED = sign_statement(
    Statement(
        ledger="test.example/evidence-ledger",
        case_id="0f8e7d6c-5b4a-4392-8171-605f4e3d2c1b",
        event_id="1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d",
        seq=4,
        prev=hashlib.sha256(b"prev").hexdigest(),
        type="FootageCaptured",
        type_version=1,
        occurred_at="2026-02-05T17:04:00.000000Z",
        signer=key_id(KEY),
        body=footage_captured(),
    ),
    KEY,
)


def _refused(raw: bytes) -> bool:
    try:
        verify_envelope(parse_envelope(raw), KEY.public_key())
    except (MalformedInputError, VerificationError):
        return True
    return False


def _flip(raw: bytes, position: int, xor: int) -> bytes:
    return raw[:position] + bytes([raw[position] ^ xor]) + raw[position + 1 :]


def test_the_stored_envelope_itself_verifies() -> None:
    assert not _refused(STORED)


@settings(max_examples=400, deadline=None)
@given(position=st.integers(0, len(STORED) - 1), xor=st.integers(1, 255))
def test_flipping_any_byte_is_refused(position: int, xor: int) -> None:
    assert _refused(_flip(STORED, position, xor))


def test_flipping_any_byte_is_refused_exhaustive_for_a_few_masks() -> None:
    for position in range(len(STORED)):
        for xor in (0x01, 0x20, 0x80):
            assert _refused(_flip(STORED, position, xor)), (position, xor)


# --------------------------------------------------------------------------- (b) canonical round trip

SAFE_INTS = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
TEXT = st.text(st.characters(codec="utf-8"), max_size=20)  # any scalar value, no lone surrogates
I_JSON = st.recursive(
    st.none() | st.booleans() | SAFE_INTS | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=40,
)


def _typed(value: Any) -> Any:
    """A structure that also tells bool from int (``True == 1`` in Python)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=300, deadline=None)
@given(I_JSON)
def test_parse_strict_inverts_canonical(value: Any) -> None:
    raw = canonical(value)
    parsed = parse_strict(raw)
    assert _typed(parsed) == _typed(value)
    assert canonical(parsed) == raw


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(TEXT, I_JSON, max_size=6))
def test_canonical_is_independent_of_key_insertion_order(value: dict[str, Any]) -> None:
    reversed_order = dict(reversed(list(value.items())))
    assert canonical(reversed_order) == canonical(value)


# --------------------------------------------------------------------------- (c) PAE injectivity


def _unpae(encoded: bytes) -> tuple[str, bytes]:
    """The inverse of PAE: its existence proves injectivity."""
    prefix = b"DSSEv1 "
    assert encoded.startswith(prefix)
    rest = encoded[len(prefix) :]
    type_len, rest = rest.split(b" ", 1)
    kind, rest = rest[: int(type_len)], rest[int(type_len) :]
    assert rest[:1] == b" "
    body_len, body = rest[1:].split(b" ", 1)
    assert len(body) == int(body_len)
    return kind.decode("utf-8"), body


TYPES = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from([PAYLOAD_TYPE, "", " ", "1 x"])


@settings(max_examples=300, deadline=None)
@given(TYPES, st.binary(max_size=64))
def test_pae_is_decodable(kind: str, body: bytes) -> None:
    assert _unpae(pae(kind, body)) == (kind, body)


@settings(max_examples=300, deadline=None)
@given(TYPES, st.binary(max_size=40), TYPES, st.binary(max_size=40))
def test_pae_is_injective_on_pairs(kind_a: str, body_a: bytes, kind_b: str, body_b: bytes) -> None:
    if (kind_a, body_a) != (kind_b, body_b):
        assert pae(kind_a, body_a) != pae(kind_b, body_b)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=30), st.data())
def test_pae_separates_the_same_bytes_split_differently(joined: str, data: st.DataObject) -> None:
    """The attack PAE exists to stop: moving bytes across the type/payload boundary."""
    i = data.draw(st.integers(0, len(joined)))
    j = data.draw(st.integers(0, len(joined)).filter(lambda x: x != i))
    a = pae(joined[:i], joined[i:].encode())
    b = pae(joined[:j], joined[j:].encode())
    assert a != b


# --------------------------------------------------------------------------- (d) replay determinism

OPS = (
    "report",
    "incident",
    "capture",
    "custody",
    "derivative",
    "hold_case",
    "hold_footage",
    "lift",
    "release",
    "referral",
    "ack",
    "access",
    "close",
    "reopen",
)
AUTHORITIES = {"middlesex_da": "prosecutor", "massachusetts_ag": "ag_prosecutor"}


@dataclass
class CaseModel:
    """Just enough of the case rules to generate only valid events."""

    case_id: str
    counter: int = 0
    footage: dict[str, dict[str, Any]] = field(default_factory=dict)
    derivatives: dict[str, str] = field(default_factory=dict)  # derivative id -> footage id
    holds: dict[str, Any] = field(default_factory=dict)  # active hold id -> scope
    referrals: dict[str, str] = field(default_factory=dict)  # unacknowledged id -> authority
    closed: bool = False

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def held(self, footage_id: str) -> bool:
        return any(scope == "case" or footage_id in scope for scope in self.holds.values())

    def step(self, op: str, k: int) -> tuple[str, str, dict[str, Any]] | None:
        """(who, event type, body) for ``op`` if it is valid now, else None."""
        footage = sorted(self.footage)
        pick = footage[k % len(footage)] if footage else None
        body: dict[str, Any]
        if self.closed:
            if op == "reopen":
                self.closed = False
                return "supervisor", "CaseReopened", {"reason": "New evidence"}
            if op == "access" and pick is not None:
                return "service", "EvidenceAccessed", {"footage_id": pick, "actor": "Clerk", "purpose": "audit"}
            return None
        if op == "report":
            body = {
                "report_id": self.next_id("rpt"), "channel": "walk_in", "received_at": "2026-02-05T17:02:00Z",
                "location": "Central Square", "observed_agency": "ICE", "narrative": "Saw it.", "reporter": None,
            }
            return "investigator", "ReportReceived", body
        if op == "incident":
            body = {**incident_documented(), "incident_id": self.next_id("inc")}
            return "investigator", "IncidentDocumented", body
        if op == "capture":
            footage_id = self.next_id("ftg")
            depicts = DEPICTS[k % len(DEPICTS)]
            sha = hashlib.sha256(f"{self.case_id}/{footage_id}".encode()).hexdigest()
            body = {**footage_captured(footage_id, sha=sha), "depicts": [depicts]}
            self.footage[footage_id] = {"custodian": body["custodian"], "depicts": depicts, "sha": sha}
            return "investigator", "FootageCaptured", body
        if op == "custody" and pick is not None:
            current = self.footage[pick]["custodian"]
            new = f"Custodian {k}"
            self.footage[pick]["custodian"] = new
            body = {"footage_id": pick, "from_custodian": current, "to_custodian": new, "purpose": "review"}
            return "investigator", "CustodyTransferred", body
        if op == "derivative" and pick is not None:
            derivative_id = self.next_id("drv")
            self.derivatives[derivative_id] = pick
            body = {
                "derivative_id": derivative_id, "footage_id": pick,
                "sha256": hashlib.sha256(f"{self.case_id}/{derivative_id}".encode()).hexdigest(),
                "size_bytes": k, "kind": "redaction", "description": "blurred",
            }
            return "investigator", "FootageDerivativeCreated", body
        if op == "hold_case" or (op == "hold_footage" and pick is not None):
            hold_id = self.next_id("hold")
            scope: Any = "case" if op == "hold_case" else [pick]
            self.holds[hold_id] = scope
            body = {"hold_id": hold_id, "scope": scope, "authority": "middlesex_da", "reason": "investigation"}
            return "investigator", "InvestigationHoldPlaced", body
        if op == "lift" and self.holds:
            hold_id = sorted(self.holds)[k % len(self.holds)]
            del self.holds[hold_id]
            return "supervisor", "InvestigationHoldLifted", {"hold_id": hold_id, "reason": "cleared"}
        if op == "release" and pick is not None and not self.held(pick):
            info = self.footage[pick]
            own = sorted(d for d, f in self.derivatives.items() if f == pick)
            body = {"footage_id": pick, "sha256": info["sha"], "channel": "city website"}
            if own and k % 2:
                body["derivative_id"] = own[k % len(own)]
                body["sha256"] = hashlib.sha256(f"{self.case_id}/{body['derivative_id']}".encode()).hexdigest()
            releasable = info["depicts"] != "other"
            body["basis"] = "executive_order" if releasable else "court_order"
            return "supervisor", "FootageReleased", body
        if op == "referral":
            referral_id = self.next_id("ref")
            authority = sorted(AUTHORITIES)[k % 2]
            self.referrals[referral_id] = authority
            return "investigator", "ReferralMade", {"referral_id": referral_id, "authority": authority, "basis": "b"}
        if op == "ack" and self.referrals:
            referral_id = sorted(self.referrals)[k % len(self.referrals)]
            authority = self.referrals.pop(referral_id)
            return AUTHORITIES[authority], "ReferralAcknowledged", {"referral_id": referral_id, "note": "ok"}
        if op == "access" and pick is not None:
            own = sorted(d for d, f in self.derivatives.items() if f == pick)
            target = {"derivative_id": own[0]} if own and k % 2 else {"footage_id": pick}
            return "service", "EvidenceAccessed", {**target, "actor": "Clerk", "purpose": "download"}
        if op == "close":
            self.closed = True
            return "supervisor", "CaseClosed", {"disposition": "done"}
        return None


def _read_models(ledger: Ledger) -> dict[str, Any]:
    with ledger.db.read() as tx:
        return {
            table: [tuple(row) for row in tx.query(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in ("case_state", "case_timeline", "case_custody", "public_releases", "projection_tracking")
        }


@pytest.fixture
def actors(ledger: Ledger) -> Actors:
    actors = Actors.register(ledger)
    actors.keys["service"] = load_private_key(key_path(ledger.data_dir, "service"))
    return actors


STEPS = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(OPS), st.integers(0, 7)), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_rebuild_is_deterministic_and_equals_the_incremental_result(
    ledger: Ledger, actors: Actors, steps: list[tuple[int, str, int]]
) -> None:
    cases = [CaseModel(new_case_id()), CaseModel(new_case_id())]
    for model in cases:
        actors.ok("investigator", model.case_id, "CaseOpened", case_opened(model.case_id[:8]))
    applied, links = 2, 0
    for which, op, k in steps:
        model = cases[which]
        planned = model.step(op, k)
        if planned is not None:
            who, event_type, body = planned
            actors.ok(who, model.case_id, event_type, body)
            applied += 1
            links += event_type in ("FootageCaptured", "CustodyTransferred")

    incremental = _read_models(ledger)
    assert sum(1 for row in incremental["case_timeline"] if row[0] in {m.case_id for m in cases}) == applied
    ours = {m.case_id for m in cases}  # the ledger is shared by the examples
    assert sum(1 for row in incremental["case_custody"] if row[0] in ours) == links  # one row per link
    for model in cases:
        for footage_id, footage in model.footage.items():
            chain = ledger.custody(model.case_id, footage_id)
            assert [link["step"] for link in chain] == list(range(1, len(chain) + 1))
            assert chain[-1]["to_custodian"] == footage["custodian"] and chain[0]["purpose"] == "capture"
    rebuild(ledger.db, ledger.appender, from_zero=True)
    first = _read_models(ledger)
    rebuild(ledger.db, ledger.appender, from_zero=True)
    second = _read_models(ledger)
    assert second == first  # a rebuild is deterministic
    assert rebuild(ledger.db, ledger.appender, from_zero=False) == 0
    assert _read_models(ledger) == first
    _assert_same_as_incremental(ledger, incremental, first)
    for model in cases:
        view = ledger.case_view(model.case_id)
        assert view["status"] == ("closed" if model.closed else "open")


def _assert_same_as_incremental(ledger: Ledger, incremental: dict[str, Any], rebuilt: dict[str, Any]) -> None:
    """A rebuild equals the incremental result, table by table."""
    for table in ("case_state", "case_timeline", "case_custody", "projection_tracking", "public_releases"):
        assert rebuilt[table] == incremental[table], table


def test_public_release_log_never_shows_unreleased_footage(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
    assert ledger.public_releases() == []  # eligible, not released: nothing public
    actors.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed())
    assert ledger.case_view(case_id)["footage"][0]["release_status"] == "held"
    before = _read_models(ledger)
    rebuild(ledger.db, ledger.appender, from_zero=True)
    assert _read_models(ledger) == before
    assert ledger.public_releases() == []
