"""Event bodies described from their declarations: JSON Schema, fillable templates and examples.

Everything here is generated from the field specs of ``domain.events`` (the codecs of
``domain.fields``) and the roles each type declares (``Rules.roles``): nothing restates a type, so a
registered type is described the moment it exists. A codec this module does not know is an error
(``TypeError``), never a silently loose schema.

* :func:`body_schema` — JSON Schema (2020-12) of a type's body: JSON types, required fields,
  enumerations, lengths, patterns, formats, ``additionalProperties: false``. The cross-field rules a
  type checks in code (an end not before its start, a key id that is the hash of its key, exactly
  one of two ids) are named in ``$comment``; the ledger enforces them (``INVALID_BODY``).
* :func:`template` — the body with a placeholder string in every field saying what goes there;
  optional fields say so and may be deleted.
* :func:`example` — a valid body (every placeholder filled), accepted by ``domain.events.parse_body``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

from domain import fields as f
from domain.errors import InvalidEventError
from domain.events import EVENT_TYPES, Event, key_id_for, parse_body

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: an example instant (every timestamp of an example is this one, so "not before" checks hold)
EXAMPLE_TIME = "2026-02-05T17:00:00Z"
_CONTROL_FREE = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"

#: what a pattern codec of ``domain.fields`` is, by its regex: (schema format, example value)
_PATTERNS: dict[str, tuple[str | None, str]] = {
    f.ID_RE.pattern: (None, "id-1"),
    f.SHA256_RE.pattern: (None, hashlib.sha256(b"example").hexdigest()),
    f.MEDIA_TYPE_RE.pattern: (None, "video/mp4"),
    f.URL_RE.pattern: ("uri", "https://example.org/releases/1"),
}


def event_types(stream: str | None = None) -> list[str]:
    """The registered type names (of one stream, ``"case"`` or ``"registry"``, if given), in
    registration order."""
    return [name for name, cls in EVENT_TYPES.items() if stream is None or cls.RULES.stream == stream]


def event_class(type_name: str) -> type[Event]:
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        known = ", ".join(EVENT_TYPES)
        raise InvalidEventError(f"unknown event type {type_name!r}; known: {known}", code="UNKNOWN_EVENT_TYPE")
    return cls


def describe_types() -> list[dict[str, Any]]:
    """Every type with what its declaration says: stream, the roles that may append it, whether a
    closed case accepts it, whether it opens a case, its version."""
    return [
        {
            "type": name,
            "version": cls.VERSION,
            "stream": cls.RULES.stream,
            "roles": sorted(cls.RULES.roles),
            "opens_case": cls.RULES.opens,
            "when_closed": cls.RULES.when_closed,
            "summary": _summary(cls),
        }
        for name, cls in EVENT_TYPES.items()
    ]


def _summary(cls: type[Event]) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}(") or not doc.strip():  # the dataclass's generated signature
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _spec_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [fld for fld in dataclasses.fields(cls) if "codec" in fld.metadata]


# --- JSON Schema ---------------------------------------------------------------------------------


def codec_schema(codec: Any) -> dict[str, Any]:
    """The JSON Schema of one codec's values."""
    if isinstance(codec, f.Text):
        return {"type": "string", "minLength": codec.min_len, "maxLength": codec.max_len, "pattern": _CONTROL_FREE}
    if isinstance(codec, f.Pattern):
        fmt = _PATTERNS.get(codec.regex.pattern, (None, ""))[0]
        schema = {"type": "string", "pattern": f"^(?:{codec.regex.pattern})$", "description": codec.expectation}
        return {**schema, "format": fmt} if fmt else schema
    if isinstance(codec, f.Timestamp):
        return {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{f.TIMESTAMP_RE.pattern}$",
            "description": "RFC 3339 UTC timestamp ending in Z",
        }
    if isinstance(codec, f.Enum):
        return {"type": "string", "enum": list(codec.values)}
    if isinstance(codec, f.Int):
        return {"type": "integer", "minimum": codec.minimum, "maximum": f.MAX_SAFE_INT}
    if isinstance(codec, f.Bool):
        return {"type": "boolean"}
    if isinstance(codec, f.PublicKey):
        return {
            "type": "string",
            "pattern": "^[A-Za-z0-9+/]{43}=$",
            "contentEncoding": "base64",
            "description": "standard base64 of a 32-byte Ed25519 public key",
        }
    if isinstance(codec, f.Nullable):
        return {"anyOf": [codec_schema(codec.inner), {"type": "null"}]}
    if isinstance(codec, f.ListOf):
        return {
            "type": "array",
            "items": codec_schema(codec.item),
            "minItems": codec.min_len,
            "maxItems": codec.max_len,
            **({"uniqueItems": True} if codec.unique else {}),
        }
    if isinstance(codec, f.Either):
        return {"anyOf": [{"const": codec.literal}, codec_schema(codec.other)]}
    if isinstance(codec, f.Obj):
        return object_schema(codec.cls)
    raise TypeError(f"no JSON Schema for the codec {type(codec).__name__}: describe it in ledger/event_schema.py")


def object_schema(cls: type) -> dict[str, Any]:
    """An object of ``cls``'s spec fields: exactly those keys; optional ones may be absent or null."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for fld in _spec_fields(cls):
        schema = codec_schema(fld.metadata["codec"])
        if fld.metadata["optional"]:
            schema = {"anyOf": [schema, {"type": "null"}], "description": "optional: may be left out or null"}
        else:
            required.append(fld.name)
        properties[fld.name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _cross_field_rules(cls: type[Event]) -> str | None:
    """The type's own ``check`` (cross-field rules) named, when it has one."""
    if cls.check is Event.check:
        return None
    return (
        f"{cls.TYPE} also checks rules across its fields that JSON Schema does not express"
        " (see docs/formats.md); the ledger refuses a body that breaks them with INVALID_BODY"
    )


def body_schema(type_name: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``type_name``'s body, as a document of its own."""
    cls = event_class(type_name)
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:evidence-ledger:event:{cls.TYPE}:v{cls.VERSION}",
        "title": f"{cls.TYPE} v{cls.VERSION} body",
        **object_schema(cls),
    }
    summary = _summary(cls)
    if summary:
        schema["description"] = summary
    comment = _cross_field_rules(cls)
    if comment:
        schema["$comment"] = comment
    return schema


# --- templates and examples -----------------------------------------------------------------------


def _placeholder(codec: Any) -> Any:
    if isinstance(codec, f.Text):
        return f"<text, {codec.min_len} to {codec.max_len} characters>"
    if isinstance(codec, f.Pattern):
        return f"<{codec.expectation}>"
    if isinstance(codec, f.Timestamp):
        return "<timestamp: RFC 3339 UTC, e.g. 2026-02-05T17:00:00Z>"
    if isinstance(codec, f.Enum):
        return f"<one of: {' | '.join(codec.values)}>"
    if isinstance(codec, f.Int):
        return f"<integer, at least {codec.minimum}>"
    if isinstance(codec, f.Bool):
        return "<true or false>"
    if isinstance(codec, f.PublicKey):
        return "<public key: standard base64 of 32 bytes>"
    if isinstance(codec, f.Nullable):
        inner = _placeholder(codec.inner)
        return inner if not isinstance(inner, str) else f"{inner[:-1]}, or null>"  # an object: see the legend
    if isinstance(codec, f.ListOf):
        return [_placeholder(codec.item)]
    if isinstance(codec, f.Either):
        other = codec.other
        if isinstance(other, f.ListOf) and isinstance(item := _placeholder(other.item), str):
            return f'<the string "{codec.literal}", or a list of {other.min_len} to {other.max_len} of: {item[1:-1]}>'
        return f'<the string "{codec.literal}", or: {_placeholder(other)}>'

    if isinstance(codec, f.Obj):
        return _template_of(codec.cls)
    raise TypeError(f"no template for the codec {type(codec).__name__}: describe it in ledger/event_schema.py")


def _template_of(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fld in _spec_fields(cls):
        value = _placeholder(fld.metadata["codec"])
        if fld.metadata["optional"] and isinstance(value, str):
            value = f"<optional, delete the line to leave it out: {value[1:]}"
        out[fld.name] = value
    return out


def template(type_name: str) -> dict[str, Any]:
    """A fillable body of ``type_name``: every field, each with a placeholder that says its type
    (optional fields say they are optional)."""
    return _template_of(event_class(type_name))


def required_fields(type_name: str) -> tuple[list[str], list[str]]:
    """(required, optional) top-level field names of ``type_name``."""
    specs = _spec_fields(event_class(type_name))
    return [x.name for x in specs if not x.metadata["optional"]], [x.name for x in specs if x.metadata["optional"]]


_EXAMPLE_KEY = base64.b64encode(bytes(range(32))).decode("ascii")


def _example_value(codec: Any, name: str) -> Any:
    if isinstance(codec, f.Text):
        return ("Example " + name.replace("_", " "))[: codec.max_len].ljust(codec.min_len, ".")
    if isinstance(codec, f.Pattern):
        value = _PATTERNS.get(codec.regex.pattern, (None, ""))[1]
        if codec.regex.pattern == f.ID_RE.pattern:
            value = name.replace("_", "-") + "-1"
        if not value or codec.regex.fullmatch(value) is None:
            raise TypeError(f"no example for the pattern {codec.regex.pattern!r}: add one in ledger/event_schema.py")
        return value
    if isinstance(codec, f.Timestamp):
        return EXAMPLE_TIME
    if isinstance(codec, f.Enum):
        return codec.values[0]
    if isinstance(codec, f.Int):
        return max(codec.minimum, 1)
    if isinstance(codec, f.Bool):
        return False
    if isinstance(codec, f.PublicKey):
        return _EXAMPLE_KEY
    if isinstance(codec, f.Nullable):
        return _example_value(codec.inner, name)
    if isinstance(codec, f.ListOf):
        return [_example_value(codec.item, name)]
    if isinstance(codec, f.Either):
        return codec.literal
    if isinstance(codec, f.Obj):
        return {fld.name: _example_value(fld.metadata["codec"], fld.name) for fld in _spec_fields(codec.cls)}
    raise TypeError(f"no example for the codec {type(codec).__name__}: describe it in ledger/event_schema.py")


#: bodies whose cross-field rules tie one field to another get the tie made here
_TIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "KeyRegistered": lambda body: {**body, "key_id": key_id_for(base64.b64decode(body["public_key"]))},
}


def example(type_name: str) -> dict[str, Any]:
    """A valid body of ``type_name`` (``parse_body`` accepts it): every required field filled, and as
    many optional ones as the type's own rules allow (e.g. exactly one of two ids)."""
    cls = event_class(type_name)
    specs = _spec_fields(cls)
    full = {fld.name: _example_value(fld.metadata["codec"], fld.name) for fld in specs}
    tie = _TIES.get(type_name, lambda body: body)
    optional = [fld.name for fld in specs if fld.metadata["optional"]]
    # all optional fields, then all but one, …, then none: the first that the type's rules accept
    for keep in range(len(optional), -1, -1):
        for dropped in _combinations(optional, len(optional) - keep):
            body = tie({k: v for k, v in full.items() if k not in dropped})
            try:
                parse_body(type_name, cls.VERSION, body)
            except InvalidEventError:
                continue
            return body
    raise TypeError(f"no valid example for {type_name}: teach ledger/event_schema.py its cross-field rule")


def _combinations(items: list[str], size: int) -> list[set[str]]:
    import itertools

    return [set(c) for c in itertools.combinations(items, size)]

