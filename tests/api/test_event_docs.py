"""The OpenAPI document describes every event body: a schema per type (generated from the
declarations), a Statement schema with a discriminator on ``type``, and a valid example per type on
the two append operations."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from domain.events import EVENT_TYPES, parse_body
from ledger import event_schema
from ledger.envelope.canonical import parse_canonical
from ledger.envelope.dsse import statement_from_json
from ledger.store import Ledger
from tests.support.api import Api, running_api


@pytest.fixture
def document(ledger: Ledger) -> Iterator[dict[str, Any]]:
    with running_api(ledger) as api:
        yield _document(api)


def _document(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_every_event_type_has_its_body_schema_and_a_valid_example(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    statement = components["Statement"]
    assert statement["discriminator"]["propertyName"] == "type"
    assert set(statement["discriminator"]["mapping"]) == set(EVENT_TYPES)
    examples: dict[str, Any] = {}
    for path, stream in (("/v1/cases/{case_id}/events", "case"), ("/v1/keys", "registry")):
        content = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert content["schema"]["properties"]["payload"]["contentSchema"] == {"$ref": "#/components/schemas/Statement"}
        assert list(content["examples"]) == event_schema.event_types(stream)
        examples.update(content["examples"])
    assert set(examples) == set(EVENT_TYPES)
    for type_name, cls in EVENT_TYPES.items():
        body_schema = components[f"{type_name}Body"]
        assert body_schema["additionalProperties"] is False
        standalone = event_schema.body_schema(type_name)
        assert {**body_schema, "$schema": standalone["$schema"], "$id": standalone["$id"]} == standalone
        envelope = examples[type_name]["value"]
        decoded = parse_canonical(base64.b64decode(envelope["payload"]), what="statement")
        st = statement_from_json(decoded)  # the ledger's own statement parser accepts it
        assert (st.type, st.type_version) == (type_name, cls.VERSION)
        parse_body(st.type, st.type_version, st.body)
        assert jsonschema_rs.Draft202012Validator(body_schema).is_valid(st.body)
        assert f"events template {type_name}" in examples[type_name]["description"]
