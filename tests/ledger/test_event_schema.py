"""Event schemas, templates and examples are generated from the declarations in domain/events.py:
every type's template, once filled, is accepted; every type's schema accepts the bodies the tests
use and rejects an extra field, a missing required one and a value of the wrong type."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import jsonschema_rs
import pytest

from domain.errors import InvalidEventError
from domain.events import EVENT_TYPES, key_id_for, parse_body
from domain.roles import ALLOWED
from ledger import event_schema as es
from tests.support import cases
from tests.support.domain import BODIES

TYPES = list(EVENT_TYPES)

#: the builders of tests/support/cases.py, by the type they build
BUILT: list[tuple[str, dict[str, Any]]] = [
    ("CaseOpened", cases.case_opened()),
    ("ReportReceived", cases.report_received(None)),
    ("ReportReceived", cases.report_received({"sealed_ref": "sealed:1", "commitment": "ab" * 32})),
    ("IncidentDocumented", cases.incident_documented()),
    ("FootageCaptured", cases.footage_captured()),
    ("FootageCaptured", cases.footage_captured(stored=True)),
    ("InvestigationHoldPlaced", cases.hold_placed()),
    ("InvestigationHoldPlaced", cases.hold_placed(scope=["ftg-1", "ftg-2"])),
    ("FootageDerivativeCreated", cases.derivative_created()),
    ("FootageReleased", cases.footage_released()),
    ("FootageReleased", cases.footage_released(derivative=False)),
    ("ReferralMade", cases.referral_made()),
]


def _validator(type_name: str) -> Any:
    return jsonschema_rs.Draft202012Validator(es.body_schema(type_name))


def _fill(placeholder: str) -> Any:
    """A value for a placeholder, chosen from its text alone (as a person filling it would)."""
    text = placeholder.strip("<>")
    if text.startswith("optional"):
        text = text.split(": ", 1)[1]
    if text.startswith("one of: "):
        return text[len("one of: "):].split(" | ")[-1].removesuffix(", or null")
    if text.startswith('the string "'):
        return text.split('"')[1]
    rules = [
        ("integer", 7),
        ("true or false", True),
        ("timestamp", "2026-03-01T09:30:00Z"),
        ("SHA-256", "0123456789abcdef" * 4),
        ("public key", base64.b64encode(b"k" * 32).decode()),
        ("media type", "image/jpeg"),
        ("http(s) URL", "https://city.example/releases/7"),
        ("an id of", "filled-id.7"),
        ("text,", "Filled in by hand"),
    ]
    for word, value in rules:
        if word in text:
            return value
    raise AssertionError(f"a placeholder that does not say its type: {placeholder}")


def _filled(template: Any) -> Any:
    if isinstance(template, dict):
        return {k: _filled(v) for k, v in template.items()}
    if isinstance(template, list):
        return [_filled(v) for v in template]
    assert isinstance(template, str) and re.fullmatch(r"<.+>", template, re.S), template
    return _fill(template)


@pytest.mark.parametrize("type_name", TYPES)
def test_the_template_filled_in_is_accepted(type_name: str) -> None:
    template = es.template(type_name)
    required, optional = es.required_fields(type_name)
    assert list(template) == [*required, *optional] or set(template) == {*required, *optional}
    for name in optional:
        assert template[name].startswith("<optional"), template[name]
    for name in required:
        assert not str(template[name]).startswith("<optional")
    body = _filled(template)
    if type_name == "KeyRegistered":  # the key id is the hash of the key: the person computes it
        body["key_id"] = key_id_for(base64.b64decode(body["public_key"]))
    # the optional lines: all kept, or (when the type's rules allow only some) kept one at a time
    attempts = [body] + [{k: v for k, v in body.items() if k not in optional or k == keep} for keep in optional]
    accepted = []
    for attempt in attempts:
        try:
            parse_body(type_name, EVENT_TYPES[type_name].VERSION, attempt)
        except InvalidEventError:
            continue
        accepted.append(attempt)
    assert accepted, f"no filled-in template of {type_name} is accepted"
    assert _validator(type_name).is_valid(accepted[0])


@pytest.mark.parametrize("type_name", TYPES)
def test_the_example_is_accepted_by_the_ledger_and_the_schema(type_name: str) -> None:
    body = es.example(type_name)
    assert parse_body(type_name, EVENT_TYPES[type_name].VERSION, body).to_body() == body
    assert _validator(type_name).is_valid(body)


@pytest.mark.parametrize(("type_name", "body"), [*BUILT, *BODIES.items()], ids=lambda v: v if isinstance(v, str) else "")
def test_the_schema_accepts_the_bodies_the_tests_use(type_name: str, body: dict[str, Any]) -> None:
    parse_body(type_name, 1, body)  # a body the ledger accepts …
    errors = [str(e) for e in _validator(type_name).iter_errors(body)]
    assert errors == []  # … the schema accepts too


@pytest.mark.parametrize("type_name", TYPES)
def test_the_schema_refuses_an_extra_field_a_missing_one_and_a_wrong_type(type_name: str) -> None:
    validator, body = _validator(type_name), es.example(type_name)
    assert not validator.is_valid({**body, "unexpected": 1})
    required, _ = es.required_fields(type_name)
    assert required
    for name in required:
        missing = {k: v for k, v in body.items() if k != name}
        assert not validator.is_valid(missing), name
        wrong = copy.deepcopy(body)
        wrong[name] = {"not": "this"}
        assert not validator.is_valid(wrong), name
    schema = es.body_schema(type_name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False


def test_enums_lengths_and_formats_are_in_the_schema() -> None:
    schema = es.body_schema("FootageCaptured")["properties"]
    assert schema["source"]["enum"][0] == "body_worn_camera"
    assert schema["recorded_from"]["format"] == "date-time"
    assert schema["size_bytes"] == {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
    assert schema["depicts"]["uniqueItems"] is True
    validator = _validator("FootageCaptured")
    body = es.example("FootageCaptured")
    for field, value in (("source", "drone"), ("recorded_from", "2026-02-05 17:00"), ("sha256", "AB" * 32),
                         ("size_bytes", -1), ("depicts", []), ("custodian", "x" * 201), ("stored", "yes")):
        assert not validator.is_valid({**body, field: value}), field


def test_the_type_list_is_the_declarations() -> None:
    listed = {t["type"]: set(t["roles"]) for t in es.describe_types()}
    assert list(listed) == TYPES
    for role, allowed in ALLOWED.items():
        assert {t for t, roles in listed.items() if role in roles} == set(allowed), role


def test_an_unknown_codec_is_an_error_not_a_loose_schema() -> None:
    class Strange:
        def parse(self, value: object, path: str) -> object:
            return value

    with pytest.raises(TypeError, match="Strange"):
        es.codec_schema(Strange())
    with pytest.raises(InvalidEventError) as unknown:
        es.body_schema("caseopened")
    assert unknown.value.code == "UNKNOWN_EVENT_TYPE"
