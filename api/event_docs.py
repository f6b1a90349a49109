"""The event bodies in the OpenAPI document: a schema and an example for every event type.

An appended event is a DSSE envelope whose base64 ``payload`` is a canonical statement; the
statement's ``type`` names the event type and its ``body`` is that type's body. The document gets,
for every registered type (``ledger.event_schema``, generated from ``domain/events.py``):

* ``components.schemas.<Type>Body`` — the body's JSON Schema;
* ``components.schemas.<Type>Statement`` — the statement with that ``type`` and body, and
  ``components.schemas.Statement``, ``oneOf`` them with a ``discriminator`` on ``type``; the
  envelope's ``payload`` points at it (``contentEncoding: base64``, ``contentSchema``);
* on ``POST /v1/cases/{case_id}/events`` (case events) and ``POST /v1/keys`` (key registry events)
  one request example per type: an envelope whose payload is the type's example statement, shown
  decoded in the example's description. (Its signature is a placeholder: sign with
  ``evidence-ledger append``, which builds the statement and envelope from a body.)
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

from ledger import event_schema
from ledger.envelope.canonical import canonical
from ledger.envelope.dsse import PAYLOAD_TYPE, REGISTRY_CASE_ID

EXAMPLE_ORIGIN = "cambridgema.gov/evidence-ledger"
EXAMPLE_CASE = "5b0e5c1a-6f2d-4e8b-9c3a-7d1e2f3a4b5c"
EXAMPLE_SIGNER = "c347f945a943daa6290feba80cf1e13db841f992e54db55d61fff5cc767450f4"
EXAMPLE_PREV = "f35bc21af09dcc7e546fb4d0caf5073ab501f0b678ab809beaa293e408d953db"
_APPENDS = {("/v1/cases/{case_id}/events", "post"): "case", ("/v1/keys", "post"): "registry"}
_REF = "#/components/schemas/"


def _statement_schema(type_name: str, version: int) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"the signed statement of a {type_name} event",
        "required": ["body", "case_id", "event_id", "ledger", "occurred_at", "prev", "seq", "signer", "type",
                     "type_version"],
        "additionalProperties": False,
        "properties": {
            "body": {"$ref": f"{_REF}{type_name}Body"},
            "case_id": {"type": "string", "format": "uuid"},
            "event_id": {"type": "string", "format": "uuid"},
            "ledger": {"type": "string", "description": "the ledger's origin"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "prev": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$",
                     "description": "SHA-256 of the case's previous envelope; null for seq 1"},
            "seq": {"type": "integer", "minimum": 1},
            "signer": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "the signing key's id"},
            "type": {"type": "string", "enum": [type_name]},
            "type_version": {"type": "integer", "enum": [version]},
        },
    }


def example_statement(type_name: str) -> dict[str, Any]:
    """A statement of ``type_name`` carrying its example body (as ``evidence-ledger append`` builds it)."""
    cls = event_schema.event_class(type_name)
    registry = cls.RULES.stream == "registry"
    first = cls.RULES.opens
    return {
        "body": event_schema.example(type_name),
        "case_id": REGISTRY_CASE_ID if registry else EXAMPLE_CASE,
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:evidence-ledger:example:{type_name}")),
        "ledger": EXAMPLE_ORIGIN,
        "occurred_at": event_schema.EXAMPLE_TIME,
        "prev": None if first else EXAMPLE_PREV,
        "seq": 1 if first else 2,
        "signer": EXAMPLE_SIGNER,
        "type": type_name,
        "type_version": cls.VERSION,
    }


def _example(type_name: str) -> dict[str, Any]:
    statement = example_statement(type_name)
    payload = base64.b64encode(canonical(statement)).decode("ascii")
    roles = ", ".join(sorted(event_schema.event_class(type_name).RULES.roles))
    shown = json.dumps(statement["body"], indent=2, ensure_ascii=False)
    return {
        "summary": f"{type_name} (appended by: {roles})",
        "description": (
            f"The payload decodes to a `{type_name}` statement whose body is:\n\n```json\n{shown}\n```\n\n"
            f"Schema: `{type_name}Body`; a fillable body: `evidence-ledger events template {type_name}`. "
            "The signature here is a placeholder: `evidence-ledger append CASE_ID "
            f"{type_name} --key KEY --body @body.json` signs and posts it."
        ),
        "value": {
            "payload": payload,
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"keyid": EXAMPLE_SIGNER, "sig": base64.b64encode(bytes(64)).decode("ascii")}],
        },
    }


def add_event_schemas(document: dict[str, Any]) -> None:
    """Add the body and statement schemas and the per-type examples to an OpenAPI document."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    mapping = {}
    for type_name in event_schema.event_types():
        body = {k: v for k, v in event_schema.body_schema(type_name).items() if k not in ("$schema", "$id")}
        components[f"{type_name}Body"] = body
        components[f"{type_name}Statement"] = _statement_schema(type_name, event_schema.event_class(type_name).VERSION)
        mapping[type_name] = f"{_REF}{type_name}Statement"
    components["Statement"] = {
        "description": "the statement an envelope's payload carries; its `type` says which body it has",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    for (path, method), stream in _APPENDS.items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        content = operation["requestBody"]["content"]["application/json"]
        schema = copy.deepcopy(content["schema"])
        schema["properties"]["payload"] = {
            **schema["properties"]["payload"],
            "contentEncoding": "base64",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": f"{_REF}Statement"},
        }
        content["schema"] = schema
        content["examples"] = {t: _example(t) for t in event_schema.event_types(stream)}
