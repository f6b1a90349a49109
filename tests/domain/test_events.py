"""Event types: registry, strict parsing, exact round trip, no value echo in errors."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from domain.errors import InvalidEventError
from domain.events import (
    CASE_EVENT_TYPES,
    EVENT_TYPES,
    REGISTRY_EVENT_TYPES,
    EvidenceAccessed,
    FederalOfficials,
    FootageReleased,
    ReportReceived,
    SealedReporter,
    key_id_for,
    parse_body,
)
from domain.fields import MAX_SAFE_INT, timestamp_key
from tests.support.domain import BODIES, CANARY, DROP, body, key, ts

C = CANARY


def test_registry_names_every_type_by_class_name() -> None:
    assert set(EVENT_TYPES) == set(BODIES)
    assert set(EVENT_TYPES) == CASE_EVENT_TYPES | REGISTRY_EVENT_TYPES
    for name, cls in EVENT_TYPES.items():
        assert cls.TYPE == name == cls.__name__
        assert cls.VERSION == 1
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


@pytest.mark.parametrize("type_name", sorted(BODIES))
def test_round_trip_every_type(type_name: str) -> None:
    b = body(type_name)
    event = parse_body(type_name, 1, b)
    assert type(event) is EVENT_TYPES[type_name]
    assert event.to_body() == b
    assert parse_body(type_name, 1, event.to_body()) == event


OPTIONAL_CASES = [
    ("FootageReleased", "derivative_id", "dv-1"),
    ("FootageReleased", "url", "https://www.cambridgema.gov/release/fp-1"),
    ("ReferralMade", "bundle_sha256", "34" * 32),
    ("KeyRegistered", "authority", None),
    ("KeyRevoked", "compromised_since", ts(3)),
]


@pytest.mark.parametrize(("type_name", "name", "value"), OPTIONAL_CASES)
def test_optional_fields_round_trip_absent_null_and_present(type_name: str, name: str, value: Any) -> None:
    for variant in (
        body(type_name, **{name: DROP}),
        body(type_name, **{name: None}),
        body(type_name, **{name: value}),
    ):
        event = parse_body(type_name, 1, variant)
        assert event.to_body() == variant
    absent = parse_body(type_name, 1, body(type_name, **{name: DROP}))
    null = parse_body(type_name, 1, body(type_name, **{name: None}))
    assert getattr(absent, name) is None and getattr(null, name) is None
    assert name not in absent.to_body() and null.to_body()[name] is None


def test_evidence_accessed_round_trips_with_derivative_and_explicit_null_footage() -> None:
    b = body("EvidenceAccessed", footage_id=None, derivative_id="dv-1")
    assert parse_body("EvidenceAccessed", 1, b).to_body() == b


def test_nested_values_are_frozen_dataclasses_and_tuples() -> None:
    report = parse_body("ReportReceived", 1, body("ReportReceived"))
    assert isinstance(report, ReportReceived)
    assert isinstance(report.reporter, SealedReporter)
    anonymous = parse_body("ReportReceived", 1, body("ReportReceived", reporter=None))
    assert anonymous.to_body()["reporter"] is None
    incident = parse_body("IncidentDocumented", 1, body("IncidentDocumented"))
    assert isinstance(incident.federal_officials, tuple)  # type: ignore[attr-defined]
    assert isinstance(incident.federal_officials[0], FederalOfficials)  # type: ignore[attr-defined]
    assert incident.conduct == ("property_damage",)  # type: ignore[attr-defined]
    hash(incident)


def test_create_validates_like_a_submitted_body() -> None:
    event = FootageReleased.create(footage_id="fp-1", sha256="ab" * 32, basis="other", channel="web")
    assert event.to_body() == {"footage_id": "fp-1", "sha256": "ab" * 32, "basis": "other", "channel": "web"}
    with pytest.raises(InvalidEventError) as info:
        EvidenceAccessed.create(footage_id="fp-1", derivative_id="dv-1", actor="a", purpose="p")
    assert info.value.code == "INVALID_BODY"


@pytest.mark.parametrize(
    ("type_name", "version"),
    [
        ("NoSuchEvent", 1),
        ("CaseOpened", 2),
        ("CaseOpened", True),
        ("CaseOpened", 1.0),
        (C, 1),
        ("caseopened", 1),
    ],
)
def test_unknown_type_or_version(type_name: str, version: Any) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_body(type_name, version, body("CaseOpened"))
    assert info.value.code == "UNKNOWN_EVENT_TYPE"
    assert C not in str(info.value)


def _surrogate() -> str:
    return C + "\ud800"


# (type, overrides, expected field path); every case also carries the canary somewhere
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("CaseOpened", {"case_number": DROP, "summary": C}, "case_number"),
    ("CaseOpened", {C: C}, "body"),
    ("CaseOpened", {"category": C}, "category"),
    ("CaseOpened", {"category": None, "summary": C}, "category"),
    ("CaseOpened", {"summary": C * 300}, "summary"),
    ("CaseOpened", {"summary": ""}, "summary"),
    ("CaseOpened", {"summary": _surrogate()}, "summary"),
    ("CaseOpened", {"case_number": C + " with space"}, "case_number"),
    ("CaseOpened", {"case_number": "x" * 129, "summary": C}, "case_number"),
    ("CaseOpened", {"case_number": 12, "summary": C}, "case_number"),
    ("ReportReceived", {"channel": C}, "channel"),
    ("ReportReceived", {"received_at": C}, "received_at"),
    ("ReportReceived", {"received_at": "2025-06-01T12:00:00+00:00", "narrative": C}, "received_at"),
    ("ReportReceived", {"received_at": "2025-06-01 12:00:00Z", "narrative": C}, "received_at"),
    ("ReportReceived", {"received_at": "2025-02-30T12:00:00Z", "narrative": C}, "received_at"),
    ("ReportReceived", {"received_at": "2025-06-01T24:00:00Z", "narrative": C}, "received_at"),
    ("ReportReceived", {"received_at": "2025-06-01t12:00:00z", "narrative": C}, "received_at"),
    ("ReportReceived", {"narrative": C * 2000}, "narrative"),
    ("ReportReceived", {"reporter": C}, "reporter"),
    ("ReportReceived", {"reporter": {"sealed_ref": C, "commitment": C}}, "reporter.commitment"),
    ("ReportReceived", {"reporter": {"sealed_ref": "s", "commitment": "AB" * 32, "x": C}}, "reporter"),
    ("ReportReceived", {"reporter": {"commitment": "ab" * 32}, "narrative": C}, "reporter.sealed_ref"),
    ("IncidentDocumented", {"occurred_to": ts(0), "occurred_from": ts(5), "narrative": C}, "occurred_to"),
    ("IncidentDocumented", {"conduct": [], "narrative": C}, "conduct"),
    ("IncidentDocumented", {"conduct": ["violence", "violence"], "narrative": C}, "conduct"),
    ("IncidentDocumented", {"conduct": ["violence", C]}, "conduct[1]"),
    ("IncidentDocumented", {"conduct": "violence", "narrative": C}, "conduct"),
    ("IncidentDocumented", {"federal_officials": [], "narrative": C}, "federal_officials"),
    (
        "IncidentDocumented",
        {
            "federal_officials": [{**BODIES["IncidentDocumented"]["federal_officials"][0], "count": -1}],
            "narrative": C,
        },
        "federal_officials[0].count",
    ),
    (
        "IncidentDocumented",
        {"federal_officials": [{**BODIES["IncidentDocumented"]["federal_officials"][0], "face_covered": C}]},
        "federal_officials[0].face_covered",
    ),
    (
        "IncidentDocumented",
        {"federal_officials": [{**BODIES["IncidentDocumented"]["federal_officials"][0], "face_covered": 1}]},
        "federal_officials[0].face_covered",
    ),
    (
        "IncidentDocumented",
        {"federal_officials": [{**BODIES["IncidentDocumented"]["federal_officials"][0], "count": True}]},
        "federal_officials[0].count",
    ),
    ("FootageCaptured", {"size_bytes": 1.0, "custodian": C}, "size_bytes"),
    ("FootageCaptured", {"size_bytes": True, "custodian": C}, "size_bytes"),
    ("FootageCaptured", {"size_bytes": "1", "custodian": C}, "size_bytes"),
    ("FootageCaptured", {"size_bytes": MAX_SAFE_INT + 1, "custodian": C}, "size_bytes"),
    ("FootageCaptured", {"stored": 1, "custodian": C}, "stored"),
    ("FootageCaptured", {"stored": "true", "custodian": C}, "stored"),
    ("FootageCaptured", {"sha256": "AB" * 32, "custodian": C}, "sha256"),
    ("FootageCaptured", {"sha256": "ab" * 31, "custodian": C}, "sha256"),
    ("FootageCaptured", {"sha256": C}, "sha256"),
    ("FootageCaptured", {"media_type": C}, "media_type"),
    ("FootageCaptured", {"depicts": [C]}, "depicts[0]"),
    ("FootageCaptured", {"recorded_to": ts(0), "recorded_from": ts(1), "custodian": C}, "recorded_to"),
    ("InvestigationHoldPlaced", {"scope": C}, "scope"),
    ("InvestigationHoldPlaced", {"scope": [], "reason": C}, "scope"),
    ("InvestigationHoldPlaced", {"scope": ["fp-1", "fp-1"], "reason": C}, "scope"),
    ("InvestigationHoldPlaced", {"scope": ["fp-1", C + "/"]}, "scope[1]"),
    ("InvestigationHoldPlaced", {"authority": C}, "authority"),
    ("FootageReleased", {"url": C}, "url"),
    ("FootageReleased", {"url": "ftp://example.org/" + C}, "url"),
    ("FootageReleased", {"derivative_id": C + "!"}, "derivative_id"),
    ("FootageReleased", {"basis": C}, "basis"),
    ("ReferralMade", {"bundle_sha256": C}, "bundle_sha256"),
    ("ReferralAcknowledged", {"note": 5, "referral_id": DROP}, "referral_id"),
    ("EvidenceAccessed", {"derivative_id": "dv-1", "purpose": C}, "footage_id|derivative_id"),
    ("EvidenceAccessed", {"footage_id": DROP, "purpose": C}, "footage_id|derivative_id"),
    (
        "EvidenceAccessed",
        {"footage_id": None, "derivative_id": None, "purpose": C},
        "footage_id|derivative_id",
    ),
    ("KeyRegistered", {"key_id": key(2)[0], "actor": C}, "key_id"),
    ("KeyRegistered", {"public_key": C}, "public_key"),
    ("KeyRegistered", {"public_key": base64.b64encode(b"\x01" * 31).decode(), "actor": C}, "public_key"),
    (
        "KeyRegistered",
        {"public_key": base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "actor": C},
        "public_key",
    ),
    ("KeyRegistered", {"public_key": key(1)[1][:-2] + "F=", "actor": C}, "public_key"),
    ("KeyRegistered", {"role": C}, "role"),
    ("KeyRegistered", {"authority": 7, "actor": C}, "authority"),
    ("KeyRevoked", {"compromised_since": C}, "compromised_since"),
]


@pytest.mark.parametrize(("type_name", "overrides", "path"), INVALID)
def test_invalid_bodies_name_the_field_and_never_echo_the_value(
    type_name: str, overrides: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_body(type_name, 1, body(type_name, **overrides))
    exc = info.value
    assert exc.code == "INVALID_BODY"
    assert exc.refs["field"] == path
    assert str(exc).startswith(f"{path}: ")
    assert C not in str(exc) and C not in repr(exc.refs) and C not in repr(exc.args)


@pytest.mark.parametrize("bad", [None, [], "CaseOpened " + C, {1: C}])
def test_body_must_be_an_object_with_string_keys(bad: Any) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_body("CaseOpened", 1, bad)
    assert (info.value.code, info.value.refs["field"]) == ("INVALID_BODY", "body")
    assert C not in str(info.value)


def test_extra_field_message_does_not_echo_the_unknown_key() -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_body("CaseClosed", 1, {"disposition": "x", "reporter_name_" + C: "y"})
    message = str(info.value)
    assert message == (
        "body: 1 unexpected field (not named: its name may hold data); the allowed fields are: disposition"
    )
    assert C not in message and C not in repr(info.value.refs) and info.value.refs == {"field": "body"}


def test_a_misspelt_field_is_named_with_the_field_meant() -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_body("CaseClosed", 1, {"disposition": "x", "dispositon": "y", "reporter_name_" + C: "z"})
    message = str(info.value)
    assert "unexpected field 'dispositon' (did you mean 'disposition'?)" in message
    assert message == (
        "body: unexpected field 'dispositon' (did you mean 'disposition'?); 1 other unexpected field"
        " (not named: its name may hold data); the allowed fields are: disposition"
    )
    assert C not in message


def test_several_unnamed_fields_are_counted_and_a_nested_object_keeps_its_message() -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_body("CaseClosed", 1, {"disposition": "x", "a " + C: 1, "b " + C: 2})
    assert "2 unexpected fields (not named: their names may hold data)" in str(info.value)
    assert C not in str(info.value)
    b = body("ReportReceived")
    b["reporter"] = {"sealed_ref": "x", "commitment": "y", "name " + C: "z"}
    with pytest.raises(InvalidEventError) as nested:
        parse_body("ReportReceived", 1, b)
    assert str(nested.value).startswith("reporter: 1 unexpected field (not named: its name may hold data);")
    assert "the allowed fields are: " in str(nested.value) and C not in str(nested.value)


def test_nested_json_types_are_strict() -> None:
    b = body("IncidentDocumented")
    b["federal_officials"] = tuple(b["federal_officials"])  # not a JSON array
    with pytest.raises(InvalidEventError):
        parse_body("IncidentDocumented", 1, b)


def test_timestamps_keep_their_spelling_and_order_exactly() -> None:
    b = body(
        "IncidentDocumented",
        occurred_from="2025-06-01T12:00:00.5Z",
        occurred_to="2025-06-01T12:00:00.500000001Z",
    )
    assert parse_body("IncidentDocumented", 1, b).to_body()["occurred_to"] == "2025-06-01T12:00:00.500000001Z"
    assert timestamp_key("2025-06-01T12:00:00.5Z") < timestamp_key("2025-06-01T12:00:00.500000001Z")
    assert timestamp_key("2025-06-01T12:00:00.5Z") == timestamp_key("2025-06-01T12:00:00.500Z")
    same = body(
        "IncidentDocumented", occurred_from="2025-06-01T12:00:00.50Z", occurred_to="2025-06-01T12:00:00.5Z"
    )
    parse_body("IncidentDocumented", 1, same)


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    key_id, b64 = key(9)
    assert key_id_for(base64.b64decode(b64)) == key_id
    event = parse_body("KeyRegistered", 1, body("KeyRegistered", key_id=key_id, public_key=b64))
    assert event.to_body()["public_key"] == b64


@pytest.mark.parametrize("bad", ["a\x00b", "bell\x07", "esc\x1b[0m", "del\x7f", "c1\x85"])
def test_free_text_refuses_control_characters(bad: str) -> None:
    from domain.errors import InvalidEventError
    from domain.events import parse_body

    body = {"case_number": "CPD-1", "category": "violence", "summary": bad}
    with pytest.raises(InvalidEventError) as info:
        parse_body("CaseOpened", 1, body)
    assert info.value.refs["field"] == "summary" and bad not in str(info.value)


def test_free_text_keeps_tabs_and_line_breaks() -> None:
    from domain.events import parse_body

    body = {"case_number": "CPD-1", "category": "violence", "summary": "line one\r\nline two\tcol"}
    assert parse_body("CaseOpened", 1, body).to_body() == body
