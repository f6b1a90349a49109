"""Strict JSON in, RFC 8785 canonical JSON out.

Everything that is signed or hashed is parsed here first. The parser refuses the inputs on which
JSON implementations disagree (duplicate keys, NaN/Infinity, integers beyond the I-JSON range,
non-integral numbers, lone surrogates, a byte-order mark, invalid UTF-8, excessive nesting), and
``parse_canonical`` additionally refuses any bytes that are not their own RFC 8785 form. Error
messages never quote the input: it may be personal data.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import rfc8785

from domain.errors import MalformedInputError

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


class _Reject(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise _Reject(f"{name} is not allowed")


def _no_floats(_text: str) -> Any:
    raise _Reject("non-integral numbers are not allowed")


def _int_parser(limit: int) -> Any:
    digits = len(str(limit)) + 1

    def parse(text: str) -> int:
        if len(text) > digits or abs(value := int(text)) > limit:
            raise _Reject("integer out of range")
        return value

    return parse


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Reject("duplicate object key")
        out[key] = value
    return out


def _decoder(max_int: int) -> json.JSONDecoder:
    return json.JSONDecoder(
        object_pairs_hook=_unique_pairs,
        parse_constant=_no_constants,
        parse_float=_no_floats,
        parse_int=_int_parser(max_int),
        strict=True,
    )


_DECODERS = {MAX_SAFE_INTEGER: _decoder(MAX_SAFE_INTEGER)}


def _check_tree(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise MalformedInputError("JSON nested too deeply", code="MALFORMED_JSON")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(item, depth + 1)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInputError("lone surrogate in JSON string", code="MALFORMED_JSON") from None


def parse_strict(raw: bytes, *, max_int: int = MAX_SAFE_INTEGER) -> Any:
    """Parse bytes as strict I-JSON (see module doc); raises MalformedInputError.

    ``max_int`` widens the integer range for documents defined over int64 (Merkle proofs)."""
    if not isinstance(raw, bytes):
        raise MalformedInputError("JSON input must be bytes", code="MALFORMED_JSON")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise MalformedInputError("byte-order mark is not allowed", code="MALFORMED_JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError("body is not valid UTF-8", code="MALFORMED_JSON") from None
    try:
        decoder = _DECODERS.get(max_int) or _DECODERS.setdefault(max_int, _decoder(max_int))
        value = decoder.decode(text)
    except _Reject as exc:
        raise MalformedInputError(f"invalid JSON: {exc}", code="MALFORMED_JSON") from None
    except RecursionError:
        raise MalformedInputError("JSON nested too deeply", code="MALFORMED_JSON") from None
    except json.JSONDecodeError as exc:
        raise MalformedInputError(
            f"invalid JSON: {exc.msg} at character {exc.pos}", code="MALFORMED_JSON"
        ) from None
    # Lone surrogates can only come from \u escapes (the text is valid UTF-8), and nesting deeper
    # than MAX_DEPTH needs more than MAX_DEPTH openers: skip the tree walk when neither can occur.
    if b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_tree(value)
    return value


def _plain(value: Any) -> bool:
    """True when stdlib json with sorted keys produces exactly the RFC 8785 bytes.

    That holds for strings, booleans, null, integers within the I-JSON range, and containers of
    them whose keys are ASCII (UTF-16 and code-point orders agree; escaping rules are identical).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON value (C-accelerated where provably identical)."""
    try:
        return _dumps(value) if _plain(value) else rfc8785.dumps(value)
    except UnicodeEncodeError:
        raise MalformedInputError("value holds a lone surrogate", code="NON_CANONICAL") from None
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise MalformedInputError(f"value cannot be canonicalised: {exc}", code="NON_CANONICAL") from None


def parse_canonical(raw: bytes, *, what: str = "document") -> Any:
    """Parse strictly and insist the bytes are exactly their own RFC 8785 form."""
    value = parse_strict(raw)
    # ASCII input that strict parsing accepted holds only bounded integers and (if it is canonical at
    # all) only ASCII keys, where the C encoder's output is exactly RFC 8785: no need to walk it first.
    expected = _dumps(value) if raw.isascii() else canonical(value)
    if expected != raw:
        raise MalformedInputError(f"{what} is not in RFC 8785 canonical form", code="NON_CANONICAL")
    return value


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and a 'Z', the one form this project writes.

    The year always has four digits (``strftime('%Y')`` drops leading zeros on some platforms), so
    that these strings sort in time order.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str, *, field: str = "timestamp") -> datetime:
    """Parse an RFC 3339 UTC timestamp ending in 'Z' (fractions up to nanoseconds, truncated to µs)."""
    if not isinstance(text, str) or not _RFC3339_UTC.fullmatch(text):
        raise MalformedInputError(f"{field} must be an RFC 3339 UTC timestamp ending in 'Z'", code="BAD_TIME")
    main, _, frac = text[:-1].partition(".")
    try:
        moment = datetime.fromisoformat(main).replace(tzinfo=UTC)
    except ValueError:
        raise MalformedInputError(f"{field} is not a valid date and time", code="BAD_TIME") from None
    if frac:
        moment = moment.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return moment
