"""Field codecs: strict JSON-type validation for event bodies.

Every codec turns one JSON value into an immutable Python value (``parse``) and back (``dump``).
Error messages name the field path and what was expected and never echo the submitted value:
values may be personal data.

Timestamps stay ``str`` (RFC 3339, UTC, ending in ``Z``); compare them with :func:`timestamp_key`,
never as strings (fraction digits differ). Integers are capped at 2**53 - 1 so every body survives
RFC 8785 (JSON Canonicalization Scheme) number handling.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import field, fields
from datetime import datetime
from typing import Any, ClassVar, Protocol

from domain.errors import InvalidEventError

ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
TIMESTAMP_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z")
MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
URL_RE = re.compile(r"https?://[^\s\x00-\x1f\x7f]{1,2040}")
MAX_SAFE_INT = 2**53 - 1


def invalid(path: str, expectation: str) -> InvalidEventError:
    """The one way to report a bad field: path + expectation, never the value."""
    return InvalidEventError(
        f"{path}: expected {expectation}", code="INVALID_BODY", field=path, expected=expectation
    )


def _widen(exc: InvalidEventError, path: str, template: str) -> InvalidEventError:
    """Re-word an error about ``path`` itself (not a nested field) with a wider expectation."""
    if exc.refs.get("field") != path or "expected" not in exc.refs:  # not a value's expectation: keep it
        return exc
    return invalid(path, template.format(exc.refs.get("expected", "a valid value")))


def is_timestamp(value: object) -> bool:
    """True for an RFC 3339 UTC timestamp string ending in ``Z`` that names a real instant."""
    if not isinstance(value, str):
        return False
    match = TIMESTAMP_RE.fullmatch(value)
    if match is None:
        return False
    try:
        datetime.fromisoformat(match.group(1) + "+00:00")
    except ValueError:
        return False
    return True


def timestamp_key(value: str) -> tuple[datetime, int]:
    """An exact sort key (second, nanoseconds) for a timestamp already validated."""
    match = TIMESTAMP_RE.fullmatch(value)
    if match is None:
        raise invalid("timestamp", "an RFC 3339 UTC timestamp ending in 'Z'")
    whole = datetime.fromisoformat(match.group(1) + "+00:00")
    return whole, int((match.group(2) or "0").ljust(9, "0"))


class Codec(Protocol):
    def parse(self, value: object, path: str) -> Any: ...

    def dump(self, value: Any) -> object: ...


class _Scalar:
    """Base for codecs whose parsed value is the JSON value itself."""

    __slots__ = ()

    def dump(self, value: Any) -> object:
        return value


#: C0 controls other than tab, LF and CR; DEL; C1 controls. NUL and friends have no place in a record.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Text(_Scalar):
    """Free text typed by a person. ``free_text`` marks it for the personal-data guard
    (``domain.personal_data``), which checks every such field of every new event: a new codec
    for typed text sets it too."""

    __slots__ = ("max_len", "min_len")
    free_text: ClassVar[bool] = True

    def __init__(self, max_len: int, min_len: int = 1) -> None:
        self.max_len, self.min_len = max_len, min_len

    def parse(self, value: object, path: str) -> str:
        expectation = f"a string of {self.min_len} to {self.max_len} characters"
        if not isinstance(value, str) or not self.min_len <= len(value) <= self.max_len:
            raise invalid(path, expectation)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(path, expectation + " of valid Unicode (no lone surrogates)") from None
        if _CONTROL.search(value) is not None:
            raise invalid(path, expectation + " without control characters (tab and line breaks allowed)")
        return value


class Pattern(_Scalar):
    __slots__ = ("expectation", "regex")

    def __init__(self, regex: re.Pattern[str], expectation: str) -> None:
        self.regex, self.expectation = regex, expectation

    def parse(self, value: object, path: str) -> str:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise invalid(path, self.expectation)
        return value


class Timestamp(_Scalar):
    __slots__ = ()

    def parse(self, value: object, path: str) -> str:
        if not is_timestamp(value):
            raise invalid(path, "an RFC 3339 UTC timestamp ending in 'Z' (YYYY-MM-DDThh:mm:ss[.f]Z)")
        assert isinstance(value, str)
        return value


class Enum(_Scalar):
    __slots__ = ("values",)

    def __init__(self, values: Sequence[str]) -> None:
        self.values = tuple(values)

    def parse(self, value: object, path: str) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise invalid(path, "one of " + ", ".join(self.values))
        return value


class Int(_Scalar):
    __slots__ = ("minimum",)

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def parse(self, value: object, path: str) -> int:
        if type(value) is not int or not self.minimum <= value <= MAX_SAFE_INT:
            raise invalid(path, f"an integer from {self.minimum} to 2**53-1 (not a boolean or float)")
        return value


class Bool(_Scalar):
    __slots__ = ()

    def parse(self, value: object, path: str) -> bool:
        if type(value) is not bool:
            raise invalid(path, "a boolean")
        return value


class PublicKey(_Scalar):
    """Standard (padded) base64 of exactly 32 raw bytes, in its canonical spelling."""

    __slots__ = ()

    def parse(self, value: object, path: str) -> str:
        expectation = "standard base64 of a 32-byte Ed25519 public key"
        if not isinstance(value, str) or len(value) != 44:
            raise invalid(path, expectation)
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(path, expectation) from None
        if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != value:
            raise invalid(path, expectation)
        return value


class Nullable:
    __slots__ = ("inner",)

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def parse(self, value: object, path: str) -> Any:
        if value is None:
            return None
        try:
            return self.inner.parse(value, path)
        except InvalidEventError as exc:
            raise _widen(exc, path, "{} or null") from None

    def dump(self, value: Any) -> object:
        return None if value is None else self.inner.dump(value)


class ListOf:
    """A JSON array parsed into a tuple; enumerated lists are non-empty and without duplicates."""

    __slots__ = ("item", "max_len", "min_len", "unique")

    def __init__(self, item: Codec, *, min_len: int = 1, max_len: int = 100, unique: bool = True) -> None:
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique

    def parse(self, value: object, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            raise invalid(path, f"an array of {self.min_len} to {self.max_len} items")
        items = tuple(self.item.parse(v, f"{path}[{i}]") for i, v in enumerate(value))
        if self.unique and len(set(items)) != len(items):
            raise invalid(path, "an array without duplicate items")
        return items

    def dump(self, value: Any) -> object:
        return [self.item.dump(v) for v in value]


class Either:
    """A fixed string literal, or another codec (e.g. hold scope: "case" or a list of ids)."""

    __slots__ = ("literal", "other")

    def __init__(self, literal: str, other: Codec) -> None:
        self.literal, self.other = literal, other

    def parse(self, value: object, path: str) -> Any:
        if value == self.literal and isinstance(value, str):
            return value
        try:
            return self.other.parse(value, path)
        except InvalidEventError as exc:
            raise _widen(exc, path, f"the string {self.literal!r} or {{}}") from None

    def dump(self, value: Any) -> object:
        return value if value == self.literal else self.other.dump(value)


class Obj:
    """A nested JSON object parsed into a frozen dataclass declared with :func:`spec` fields."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def parse(self, value: object, path: str) -> Any:
        return parse_fields(self.cls, value, path)

    def dump(self, value: Any) -> object:
        return dump_fields(value)


def spec(codec: Codec, *, optional: bool = False) -> Any:
    """Declare a dataclass field with its codec; optional fields may be absent or null."""
    meta = {"codec": codec, "optional": optional}
    return field(default=None, metadata=meta) if optional else field(metadata=meta)


ID = Pattern(ID_RE, "an id of 1 to 128 characters from [A-Za-z0-9._:-]")
SHA256 = Pattern(SHA256_RE, "64 lowercase hexadecimal characters (SHA-256)")
MEDIA_TYPE = Pattern(MEDIA_TYPE_RE, "a lowercase media type such as video/mp4")
URL = Pattern(URL_RE, "an http(s) URL of at most 2048 characters without whitespace")
TIMESTAMP = Timestamp()
BOOL = Bool()
COUNT = Int(0)
NARRATIVE = Text(20000)
TEXT = Text(2000)
SHORT = Text(200)
LOCATION = Text(500)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


#: a key shaped like a field name
FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _unexpected(where: str, extra: Sequence[str], names: set[str]) -> InvalidEventError:
    """Names each unexpected key that is a slip of a declared field name (shaped like one and close to
    one, e.g. ``sumary``), with that field; any other key might hold data and is only counted. Then
    the declared fields, so the message says what may be there."""
    import difflib

    shown = []
    for key in sorted(k for k in extra if FIELD_NAME_RE.fullmatch(k)):
        close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.75)
        if close:
            shown.append(f"'{key}' (did you mean '{close[0]}'?)")
    hidden = len(extra) - len(shown)
    other = "other " if shown else ""
    parts = ([f"unexpected field{'s' if len(shown) > 1 else ''} {', '.join(shown)}"] if shown else []) + (
        [f"{hidden} {other}unexpected field{'s' if hidden > 1 else ''}"
         f" (not named: {'their names' if hidden > 1 else 'its name'} may hold data)"]
        if hidden else []
    )
    allowed = ", ".join(sorted(names)) or "none"
    return InvalidEventError(
        f"{where}: {'; '.join(parts)}; the allowed fields are: {allowed}", code="INVALID_BODY", field=where
    )


def parse_fields(cls: type, body: object, prefix: str = "") -> Any:
    """Build ``cls`` from a JSON object: exact key set, every value through its codec.

    If ``cls`` has an ``explicit_nulls`` field, optional keys given as null are recorded there so
    :func:`dump_fields` can emit exactly the keys that were parsed.
    """
    where = prefix or "body"
    if not isinstance(body, Mapping) or not all(isinstance(k, str) for k in body):
        raise invalid(where, "a JSON object")
    declared = [f for f in fields(cls) if "codec" in f.metadata]
    names = {f.name for f in declared}
    for f in declared:
        if f.name not in body and not f.metadata["optional"]:
            raise invalid(_join(prefix, f.name), "a value (the required field is missing)")
    extra = [k for k in body if k not in names]
    if extra:
        raise _unexpected(where, extra, names)
    values: dict[str, Any] = {}
    nulls: set[str] = set()
    for f in declared:
        if f.name not in body:
            continue
        raw = body[f.name]
        if raw is None and f.metadata["optional"]:
            nulls.add(f.name)
            continue
        values[f.name] = f.metadata["codec"].parse(raw, _join(prefix, f.name))
    if any(f.name == "explicit_nulls" for f in fields(cls)):
        values["explicit_nulls"] = frozenset(nulls)
    return cls(**values)


def dump_fields(obj: Any) -> dict[str, object]:
    """The JSON object for a dataclass built by :func:`parse_fields` (or by hand)."""
    nulls: frozenset[str] = getattr(obj, "explicit_nulls", frozenset())
    out: dict[str, object] = {}
    for f in fields(obj):
        if "codec" not in f.metadata:
            continue
        value = getattr(obj, f.name)
        if value is None and f.metadata["optional"] and f.name not in nulls:
            continue
        out[f.name] = f.metadata["codec"].dump(value)
    return out
