"""The C-accelerated canonical encoder must give exactly the rfc8785 package's bytes."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.envelope.canonical import MAX_SAFE_INTEGER, canonical

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8), children, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_fast_path_equals_rfc8785(value: object) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_control_characters_and_escapes_match() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\u007f\u2028\u2029\U0001f600é'
    value = {"k": text, "\u00e9": 1, "a": [text], "\U0001f600": 2, "\ufb33": 3}
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical({"k": text}) == rfc8785.dumps({"k": text})


@settings(max_examples=400, deadline=None)
@given(values)
def test_parse_canonical_agrees_with_rfc8785_on_any_ascii_spelling(value: object) -> None:
    """The ASCII shortcut in parse_canonical accepts exactly the bytes rfc8785 would produce."""
    import json

    from domain.errors import MalformedInputError
    from ledger.envelope.canonical import parse_canonical

    for raw in (rfc8785.dumps(value), json.dumps(value, sort_keys=True, separators=(",", ":")).encode()):
        try:
            parse_canonical(raw)
            accepted = True
        except MalformedInputError:
            accepted = False
        assert accepted == (raw == rfc8785.dumps(value))
