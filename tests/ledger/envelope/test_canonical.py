"""Strict JSON parsing and RFC 8785 (JCS) canonical output.

The RFC 8785 examples are typed from the RFC (§3.2.2 "values", §3.2.3 sorting) and from the
reference implementation's test data (github.com/cyberphone/json-canonicalization, ``testdata``:
"arrays", "structures", "french", "unicode", "weird"). Our strict parser refuses non-integral
numbers by design, so for the examples that contain floats we assert the refusal, and check the
canonical bytes of the same document without its float members.

Every refusal checks the error code and that the message (and refs) never quote the input: each
refused input carries a canary string that must not appear.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.errors import MalformedInputError
from ledger.envelope.canonical import MAX_SAFE_INTEGER, canonical, parse_canonical, parse_strict, parse_time

CANARY = "Canary-Zq81x"
CANARY_BYTES = CANARY.encode()


def refused(raw: bytes, code: str, *, parse: Callable[[bytes], object] = parse_strict) -> MalformedInputError:
    with pytest.raises(MalformedInputError) as info:
        parse(raw)
    exc = info.value
    assert exc.code == code, (exc.code, exc.message)
    text = f"{exc.message} {exc.refs!r} {exc!r}"
    assert CANARY not in text
    assert len(exc.message) < 200
    return exc


# --------------------------------------------------------------------------- RFC 8785 examples

#: RFC 8785 §3.2.2 input (whitespace as in the RFC)
RFC_VALUES_INPUT = rb"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""

#: the same input without the float-only "numbers" member
RFC_VALUES_NO_NUMBERS = rb"""{
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""

#: RFC 8785 §3.2.2 expected output, minus the "numbers" member (UTF-8, € is E2 82 AC)
RFC_VALUES_OUTPUT_NO_NUMBERS = (
    b'{"literals":[null,true,false],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

#: RFC 8785 §3.2.3 sorting example
RFC_SORTING_INPUT = rb"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""

RFC_SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode("utf-8")


def test_rfc8785_values_example_with_floats_is_refused_by_the_strict_parser() -> None:
    refused(RFC_VALUES_INPUT, "MALFORMED_JSON")


def test_rfc8785_values_example_strings_and_literals() -> None:
    value = parse_strict(RFC_VALUES_NO_NUMBERS)
    assert value == {"string": "\u20ac$\x0f\nA'B\"\\\\\"/", "literals": [None, True, False]}
    assert canonical(value) == RFC_VALUES_OUTPUT_NO_NUMBERS
    assert parse_canonical(RFC_VALUES_OUTPUT_NO_NUMBERS) == value


def test_rfc8785_sorting_example_orders_keys_by_utf16_code_units() -> None:
    value = parse_strict(RFC_SORTING_INPUT)
    out = canonical(value)
    assert out == RFC_SORTING_OUTPUT
    assert list(parse_canonical(out).values()) == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]
    # code-point order would put U+FB33 before U+1F600; UTF-16 puts the surrogate D83D first
    assert sorted(value) != list(parse_canonical(out))


def test_utf16_order_beyond_the_bmp_and_code_point_order_is_not_canonical() -> None:
    value = {"\ufffd": 1, "\U0001f600": 2, "\ue000": 3}
    utf16 = '{"\U0001f600":2,"\ue000":3,"\ufffd":1}'.encode()
    code_points = '{"\ue000":3,"\ufffd":1,"\U0001f600":2}'.encode()
    assert canonical(value) == utf16
    assert parse_canonical(utf16) == value
    refused(code_points, "NON_CANONICAL", parse=parse_canonical)


def test_reference_arrays_example() -> None:
    raw = b'[\n  56,\n  {\n    "d": true,\n    "10": null,\n    "1": [ ]\n  }\n]'
    assert canonical(parse_strict(raw)) == b'[56,{"1":[],"10":null,"d":true}]'


def test_reference_structures_example() -> None:
    raw = (
        b'{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},\n  "10": { },\n  "": "empty",\n'
        b'  "a": { },\n  "111": [ { } ],\n  "A": { }\n}'
    )
    refused(raw, "MALFORMED_JSON")  # 56.0 is written as a non-integral number
    value = parse_strict(raw.replace(b"56.0", b"56"))
    expected = b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'
    assert canonical(value) == expected


def test_reference_french_example_ignores_locale() -> None:
    raw = (
        '{\n  "peach": "This sorting order",\n  "p\u00e9ch\u00e9": "is wrong according to French",\n'
        '  "p\u00eache": "but canonicalization MUST",\n  "sin":   "ingnore locale"\n}\n'
    ).encode()
    expected = (
        '{"peach":"This sorting order","p\u00e9ch\u00e9":"is wrong according to French",'
        '"p\u00eache":"but canonicalization MUST","sin":"ingnore locale"}'
    ).encode()
    assert canonical(parse_strict(raw)) == expected


def test_reference_unicode_example_is_not_normalised() -> None:
    raw = b'{\n  "Unnormalized Unicode":"\\u1e0d\\u0307"\n}\n'
    assert canonical(parse_strict(raw)) == '{"Unnormalized Unicode":"\u1e0d\u0307"}'.encode()


def test_reference_weird_example() -> None:
    raw = (
        b'{\n  "\\u20ac": "Euro Sign",\n  "1": "One",\n  "\\u0080": "Control\\u007f",\n'
        b'  "\\ud83d\\ude02": "Smiley",\n  "\\u00f6": "Latin Small Letter O With Diaeresis",\n'
        b'  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n  "</script>": "Browser Challenge"\n}\n'
    )
    expected = (
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\U0001f602":"Smiley",'
        '"\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert canonical(parse_strict(raw)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"0"),
        (-1, b"-1"),
        (MAX_SAFE_INTEGER, b"9007199254740991"),
        (-MAX_SAFE_INTEGER, b"-9007199254740991"),
        ("", b'""'),
        ("\x00\x1f\x7f", b'"\\u0000\\u001f\x7f"'),
        ("\b\t\n\f\r\"\\/", b'"\\b\\t\\n\\f\\r\\"\\\\/"'),
        ([], b"[]"),
        ({}, b"{}"),
        ({"b": [1, {"d": None, "c": True}], "a": False}, b'{"a":false,"b":[1,{"c":true,"d":null}]}'),
    ],
)
def test_integer_string_and_structure_serialisation(value: object, expected: bytes) -> None:
    assert canonical(value) == expected
    assert parse_canonical(expected) == value


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30, float("nan"), float("inf"), {1: "x"}, object()])
def test_canonical_refuses_values_outside_i_json(value: object) -> None:
    with pytest.raises(MalformedInputError) as info:
        canonical(value)
    assert info.value.code == "NON_CANONICAL"


# --------------------------------------------------------------------------- refusal corpus

C = CANARY_BYTES


def _nested(depth: int) -> bytes:
    return b'{"' + C + b'":' + b"[" * depth + b"]" * depth + b"}"


def _nested_value(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


REFUSED = {
    "duplicate key": b'{"' + C + b'":1,"' + C + b'":2}',
    "duplicate key, same value": b'{"' + C + b'":1,"' + C + b'":1}',
    "duplicate key nested": b'{"a":[{"b":{"' + C + b'":"x","' + C + b'":"y"}}]}',
    "duplicate key via escape": b'{"a' + C + b'":1,"\\u0061' + C + b'":2}',
    "NaN": b'{"' + C + b'":NaN}',
    "Infinity": b'{"' + C + b'":Infinity}',
    "-Infinity": b'{"' + C + b'":-Infinity}',
    "1e400": b'{"' + C + b'":1e400}',
    "1.0": b'{"' + C + b'":1.0}',
    "1.5": b'{"' + C + b'":1.5}',
    "1E2 (exponent)": b'{"' + C + b'":1E2}',
    "2**53": b'{"' + C + b'":9007199254740992}',
    "-(2**53)": b'{"' + C + b'":-9007199254740992}',
    "2**63": b'{"' + C + b'":9223372036854775808}',
    "5000-digit integer": b'{"' + C + b'":' + b"7" * 5000 + b"}",
    "5000-digit negative integer": b'{"' + C + b'":-' + b"7" * 5000 + b"}",
    "lone high surrogate": b'{"' + C + b'":"\\ud800"}',
    "lone low surrogate": b'{"' + C + b'":"\\udc00"}',
    "reversed surrogate pair": b'{"' + C + b'":"\\udc00\\ud800"}',
    "lone surrogate in a key": b'{"\\ud800' + C + b'":1}',
    "surrogate encoded as UTF-8 bytes": b'{"' + C + b'":"\xed\xa0\x80"}',
    "BOM": b'\xef\xbb\xbf{"' + C + b'":1}',
    "invalid UTF-8": b'{"' + C + b'":"\xff"}',
    "overlong UTF-8": b'{"' + C + b'":"\xc0\xaf"}',
    "truncated UTF-8": b'{"' + C + b'":"\xe2\x82"}',
    "trailing garbage": b'{"' + C + b'":1}x',
    "two documents": b'{"' + C + b'":1}{}',
    "trailing comma": b'{"' + C + b'":1,}',
    "single quotes": b"{'" + C + b"':1}",
    "comment": b'{"' + C + b'":1 /* c */}',
    "unescaped control character": b'{"' + C + b'":"a\nb"}',
    "leading zero": b'{"' + C + b'":01}',
    "plus sign": b'{"' + C + b'":+1}',
    "hex literal": b'{"' + C + b'":0x10}',
    "unquoted key": b"{" + C + b":1}",
    "deep nesting 10000": _nested(10000),
    "deep nesting 1000": _nested(1000),
    "deep nesting 100": _nested(100),
    "deep object nesting 10000": b'{"' + C + b'":' * 10000 + b"1" + b"}" * 10000,
    "empty": b"",
    "whitespace only": b" \n",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_strict_parser_refuses(name: str) -> None:
    refused(REFUSED[name], "MALFORMED_JSON")
    # parse_canonical refuses the same inputs with the same code: they are not JSON at all
    refused(REFUSED[name], "MALFORMED_JSON", parse=parse_canonical)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"' + C + b'":9007199254740991}', {CANARY: 2**53 - 1}),
        (b'{"' + C + b'":-9007199254740991}', {CANARY: -(2**53 - 1)}),
        (b'{"' + C + b'":"\\ud83d\\ude00"}', {CANARY: "\U0001f600"}),
        (b'{"' + C + b'":' + b"[" * 20 + b"]" * 20 + b"}", {CANARY: _nested_value(20)}),
        (b' {"a" : [ 1 , "\\u0041" ] } \n', {"a": [1, "A"]}),
        (b"-0", 0),
    ],
)
def test_strict_parser_accepts_the_edges(raw: bytes, value: object) -> None:
    assert parse_strict(raw) == value


NON_CANONICAL = {
    "space after colon": b'{"' + C + b'": 1}',
    "leading whitespace": b' {"' + C + b'":1}',
    "trailing newline": b'{"' + C + b'":1}\n',
    "pretty printed": b'{\n  "' + C + b'":1\n}',
    "key order": b'{"b":1,"a' + C + b'":2}',
    "escaped ASCII letter": b'{"' + C + b'":"\\u0041"}',
    "escaped slash": b'{"' + C + b'":"\\/"}',
    "escaped non-ASCII": b'{"' + C + b'":"caf\\u00e9"}',
    "escaped astral": b'{"' + C + b'":"\\ud83d\\ude00"}',
    "uppercase hex escape": b'{"' + C + b'":"\\u001F"}',
    "\\u000a instead of \\n": b'{"' + C + b'":"\\u000a"}',
    "negative zero": b'{"' + C + b'":-0}',
    "escaped DEL": b'{"' + C + b'":"\\u007f"}',
}


@pytest.mark.parametrize("name", list(NON_CANONICAL))
def test_parse_canonical_refuses_non_canonical_spellings(name: str) -> None:
    raw = NON_CANONICAL[name]
    parse_strict(raw)  # valid strict JSON ...
    refused(raw, "NON_CANONICAL", parse=parse_canonical)  # ... but not its own RFC 8785 form


def test_parse_canonical_accepts_its_own_output() -> None:
    value = {CANARY: ["A", "caf\u00e9", "\U0001f600", "\x1f", "\x7f", -5, None, {"z": {}, "a": []}]}
    raw = canonical(value)
    assert parse_canonical(raw) == value


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "text",
    ["2026-02-05T17:00:00+00:00", "2026-02-05T17:00:00", "2026-02-05 17:00:00Z", "2026-02-30T17:00:00Z",
     "2026-02-05T17:00:00.1234567890Z", "2026-02-05T17:00:00z", " 2026-02-05T17:00:00Z"],
)
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(MalformedInputError) as info:
        parse_time(text)
    assert info.value.code == "BAD_TIME"


@pytest.mark.parametrize("text", ["2026-02-05T17:00:00Z\n", "2026-02-05T17:00:00.5Z\n"])
def test_parse_time_refuses_a_trailing_newline(text: str) -> None:
    with pytest.raises(MalformedInputError) as info:
        parse_time(text)
    assert info.value.code == "BAD_TIME"
