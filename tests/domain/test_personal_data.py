"""The free-text guard's detector: every generated form of each kind is found, ordinary police text
(with its times, dates, case numbers, badges, devices, plates, hashes and UUIDs) never is, and every
free-text field of every registered event type is checked."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import EVENT_TYPES, Event, Rules, parse_body, register, unregister
from domain.fields import ID, NARRATIVE, SHORT, Either, ListOf, Nullable, Obj, Text, spec
from domain.personal_data import CODE, KINDS, find, free_text_paths, kinds, refuse_personal_data, scan_event
from domain.vocabulary import INVESTIGATION
from tests.support.narratives import BLOCKS, ORDINARY

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "events"

# -- generated personal data --------------------------------------------------------------------

digit = st.sampled_from("0123456789")
leading = st.sampled_from("23456789")  # North American area codes and exchanges start with 2-9


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(digit, min_size=n, max_size=n)


@st.composite
def us_phones(draw: st.DrawFn) -> str:
    area = draw(leading) + draw(_digits(2))
    exchange = draw(leading) + draw(_digits(2))
    line = draw(_digits(4))
    sep = draw(st.sampled_from(["-", ".", " ", ""]))
    prefix = draw(st.sampled_from(["", "+1 ", "+1-", "1-", "+1.", "1 ", "+1"]))
    area_part = draw(st.sampled_from([f"({area}) ", f"({area})", f"{area}{sep}"]))
    return f"{prefix}{area_part}{exchange}{sep}{line}"


@st.composite
def international_phones(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(["44", "52", "502", "503", "509", "55", "33", "86", "234", "91"]))
    groups = draw(st.lists(st.integers(2, 4).flatmap(_digits), min_size=2, max_size=3))  # at most 15 digits
    total = len(country) + sum(len(g) for g in groups)
    if total < 8:
        groups.append(draw(_digits(8 - total)))
    sep = draw(st.sampled_from([" ", "-", ".", ""]))
    return "+" + country + sep + sep.join(groups)


@st.composite
def phones_after_a_word(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(["phone", "Phone:", "cell", "Cell #", "tel.", "mobile", "call back at", "texted",
                                 "teléfono", "celular", "WhatsApp"]))
    number = draw(_digits(3)) + draw(st.sampled_from(["-", " ", ".", ""])) + draw(_digits(4))
    return f"{word} {number}"


@st.composite
def emails(draw: st.DrawFn) -> str:
    local_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éñ")
    local = draw(st.text(local_chars, min_size=1, max_size=12))
    local += draw(st.sampled_from(["", ".x", "+tag", "_2", "-m"]))
    label = draw(st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"), min_size=1, max_size=10))
    tld = draw(st.sampled_from(["com", "org", "gov", "mx", "com.br", "co.uk", "ht"]))
    return f"{local}@{label}.{tld}"


@st.composite
def ssns(draw: st.DrawFn) -> str:
    a, b, c = draw(_digits(3)), draw(_digits(2)), draw(_digits(4))
    if draw(st.booleans()):
        sep = draw(st.sampled_from(["-", " "]))
        return f"{a}{sep}{b}{sep}{c}"
    word = draw(st.sampled_from(["SSN", "SSN:", "ssn #", "Social Security No.", "social security number", "ITIN"]))
    sep = draw(st.sampled_from(["", "-", " "]))
    return f"{word} {a}{sep}{b}{sep}{c}"


@st.composite
def a_numbers(draw: st.DrawFn) -> str:
    n = draw(st.sampled_from([8, 9]))
    number = draw(_digits(n))
    if draw(st.booleans()):
        sep = draw(st.sampled_from(["-", " "]))
        number = sep.join([number[: n - 6], number[n - 6 : n - 3], number[n - 3 :]])
    marker = draw(st.sampled_from(["A", "A-", "A ", "A#", "A# ", "A-number ", "A-Number: ", "alien number ",
                                   "USCIS # "]))
    return marker + number


@st.composite
def dates_of_birth(draw: st.DrawFn) -> str:
    day, month, year = draw(st.integers(1, 28)), draw(st.integers(1, 12)), draw(st.integers(1930, 2020))
    months = ["January", "Feb", "March", "Apr.", "May", "June", "Jul", "August", "Sept", "Oct", "Nov", "December"]
    date = draw(st.sampled_from([
        f"{month:02d}/{day:02d}/{year}",
        f"{month}/{day}/{year % 100:02d}",
        f"{year}-{month:02d}-{day:02d}",
        f"{day:02d}.{month:02d}.{year}",
        f"{months[month - 1]} {day}, {year}",
        f"{day} {months[month - 1]} {year}",
    ]))
    context = draw(st.sampled_from([
        "DOB", "DOB:", "D.O.B.", "dob", "Date of birth:", "date of birth", "born", "born on", "Born:",
        "birthdate", "Birth date:", "fecha de nacimiento:", "nacido el", "data de nascimento", "née le",
        "age 34,", "aged 41 (", "34 y/o,", "34 years old,",
    ]))
    return f"{context} {date}"


POSITIVES = {
    "phone": st.one_of(us_phones(), international_phones(), phones_after_a_word()),
    "email": emails(),
    "ssn": ssns(),
    "a_number": a_numbers(),
    "date_of_birth": dates_of_birth(),
}

# ordinary words around the datum, in several scripts; ends that never glue onto it
before = st.sampled_from(["", "Caller gave ", "Contacto: ", "Vítima — ", "(", "目撃者 ", "see ", "Note; ",
                          "Reporter said ", "\n", "At 14:05 on 2026-11-02 the caller gave "])
after = st.sampled_from(["", ".", " to the officer.", ")", ", then left.", " — confirmed at 14:10", "\n", "; 谢谢"])


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_generated_form_of_each_kind_is_found(kind: str, data: st.DataObject) -> None:
    datum = data.draw(POSITIVES[kind])
    text = data.draw(before) + datum + data.draw(after)
    assert find(text) is not None, text
    assert kind in kinds(text), (kind, text)


@pytest.mark.parametrize("text", [
    "+1 (617) 555-0100", "(617) 555-0100", "617.555.0100", "6175550100", "617-555-0100", "+44 20 7946 0958",
    "reach her at maria.lopez@example.org", "SSN 123-45-6789", "123 45 6789", "A123456789", "A-12345678",
    "DOB 01/02/1990", "born 1990-01-02", "date of birth: January 2, 1990", "age 34, 01/02/1990",
    "電話6175550100", "fecha de nacimiento: 2 de enero de 1990", "Teléfono: +52 55 1234 5678",
])
def test_the_forms_named_in_the_docs_are_found(text: str) -> None:
    assert find(text) is not None


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_police_text_passes(text: str) -> None:
    assert find(text) is None
    assert kinds(text) == []


def test_the_ordinary_corpus_is_large_and_varied() -> None:
    assert len(ORDINARY) >= 40 and any(not t.isascii() for t in ORDINARY)
    joined = "\n".join(ORDINARY)
    for needle in ("14:05", "2:30 pm", "2026-11-02", "11/02/2026", "CPD-2026-00123", "26-004512", "#1234",
                   "AXON-BW-7731", "800 Massachusetts Ave", "Central Square", "T16:30:00Z"):
        assert needle in joined
    assert re.search(r"\b[0-9a-f]{64}\b", joined) and re.search(r"\b[0-9a-f]{8}-[0-9a-f]{4}-", joined)


uuids = st.uuids().map(str)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)
incident_dates = st.dates(date(1990, 1, 1), date(2099, 12, 31)).flatmap(
    lambda d: st.sampled_from([d.isoformat(), d.strftime("%m/%d/%Y"), d.strftime("%b %d, %Y")])
)
timestamps = st.datetimes(datetime(1990, 1, 1), datetime(2099, 12, 31)).map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
times = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
case_numbers = st.tuples(st.integers(2000, 2099), st.integers(0, 99999)).map(lambda yn: f"CPD-{yn[0]}-{yn[1]:05d}")
reports = st.tuples(st.integers(0, 99), st.integers(0, 999999)).map(lambda yn: f"{yn[0]:02d}-{yn[1]:06d}")
badges = st.integers(0, 99999).map(lambda n: f"#{n}")
counts = st.integers(0, 1000).map(lambda n: f"{n} officers")
addresses = st.integers(1, 2999).map(lambda n: f"{n} Massachusetts Ave")
ordinary_piece = st.one_of(
    st.sampled_from(BLOCKS), uuids, hashes, incident_dates, timestamps, times, case_numbers, reports, badges,
    counts, addresses,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(ordinary_piece, min_size=1, max_size=12), st.sampled_from([" ", ", ", "; ", " — ", "\n"]))
def test_generated_ordinary_text_passes(pieces: list[str], joiner: str) -> None:
    text = joiner.join(pieces) + "."
    assert find(text) is None, text


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="0123456789@"), max_size=300))
def test_text_without_digits_or_at_signs_passes(text: str) -> None:
    assert find(text) is None  # every kind needs a digit or an @ (Unicode digits aside)


# -- events ---------------------------------------------------------------------------------------


def _codec_text_paths(cls: type, prefix: str = "") -> set[str]:
    """The test's own walk: every field whose codec is a Text, through every container codec."""
    found: set[str] = set()

    def walk(codec: Any, path: str) -> None:
        if isinstance(codec, Text):
            found.add(path)
        elif isinstance(codec, Nullable):
            walk(codec.inner, path)
        elif isinstance(codec, ListOf):
            walk(codec.item, path + "[]")
        elif isinstance(codec, Either):
            walk(codec.other, path)
        elif isinstance(codec, Obj):
            found.update(_codec_text_paths(codec.cls, path))

    for f in fields(cls):
        if "codec" in f.metadata:
            walk(f.metadata["codec"], f"{prefix}.{f.name}" if prefix else f.name)
    return found


def _set(body: Any, path: str, value: str) -> None:
    """Set the value at ``a.b[0].c`` in a JSON body."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    target = body
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    last = parts[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value


def _instances(body: Any, path: str) -> list[str]:
    """Concrete paths for a declared path (``[]`` -> every index present in ``body``)."""
    head, _, rest = path.partition("[]")
    if not _:
        return [path]
    assert "[]" not in rest  # no event type nests lists of lists
    items = body
    for part in head.split("."):
        items = items[part]
    return [f"{head}[{i}]{rest}" for i in range(len(items))]


def _vector_body(type_name: str) -> dict[str, Any]:
    vector = json.loads((VECTORS / f"{type_name}.v{EVENT_TYPES[type_name].VERSION}.json").read_text("utf-8"))
    body: dict[str, Any] = vector["statement"]["body"]
    return body


def test_every_text_field_of_every_type_is_declared_free_text() -> None:
    for name, cls in EVENT_TYPES.items():
        assert set(free_text_paths(cls)) == _codec_text_paths(cls), name
    assert "narrative" in set(free_text_paths(EVENT_TYPES["ReportReceived"]))
    assert "federal_officials[].agency" in set(free_text_paths(EVENT_TYPES["IncidentDocumented"]))


@pytest.mark.parametrize("type_name", list(EVENT_TYPES))
def test_every_free_text_field_of_every_type_is_checked(type_name: str) -> None:
    """Personal data put in each free-text field of the type's golden body is found in that field;
    the golden body itself (ordinary text) passes."""
    body = _vector_body(type_name)
    version = EVENT_TYPES[type_name].VERSION
    assert scan_event(parse_body(type_name, version, body)) is None
    paths = [p for declared in free_text_paths(EVENT_TYPES[type_name]) for p in _instances(body, declared)]
    for path in paths:
        for kind, sample in [("phone", "call 617-555-0100"), ("email", "x@example.org"),
                             ("date_of_birth", "DOB 01/02/1990")]:
            changed = json.loads(json.dumps(body))
            _set(changed, path, f"Note: {sample}.")
            event = parse_body(type_name, version, changed)  # parsing never judges the text
            finding = scan_event(event)
            assert finding is not None and (finding.field, finding.kind) == (path, kind), (type_name, path)


def test_a_new_type_is_covered_without_naming_its_fields() -> None:
    @dataclass(frozen=True, kw_only=True, slots=True)
    class WitnessStatementTaken(Event):
        TYPE: ClassVar[str] = "WitnessStatementTaken"
        RULES: ClassVar[Rules] = Rules(roles=INVESTIGATION, effect=lambda s, e, c, f: s,
                                       label=lambda b: "statement")
        statement_id: str = spec(ID)
        summary: str = spec(NARRATIVE)
        languages: tuple[str, ...] = spec(ListOf(SHORT))
        remark: str | None = spec(Nullable(SHORT), optional=True)

    register(WitnessStatementTaken)
    try:
        assert set(free_text_paths(WitnessStatementTaken)) == {"summary", "languages[]", "remark"}
        base = {"statement_id": "6175550100", "summary": "Taken at 14:05.", "languages": ["Spanish"]}
        assert scan_event(parse_body("WitnessStatementTaken", 1, base)) is None  # ids are not free text
        event = parse_body("WitnessStatementTaken", 1, {**base, "languages": ["Spanish", "ask for A123456789"]})
        finding = scan_event(event)
        assert finding is not None and (finding.field, finding.kind) == ("languages[1]", "a_number")
    finally:
        unregister(WitnessStatementTaken)


def test_the_refusal_names_the_field_and_kind_never_the_value() -> None:
    body = {**_vector_body("ReportReceived"), "narrative": "Caller Maria, cell (617) 555-0142, saw agents."}
    event = parse_body("ReportReceived", 1, body)
    with pytest.raises(Exception) as caught:
        refuse_personal_data(event)
    exc: Any = caught.value
    assert exc.code == CODE and exc.refs == {"field": "narrative", "kind": "phone"}
    rendered = exc.message + json.dumps(exc.refs)
    assert "555-0142" not in rendered and "Maria" not in rendered
    assert "narrative" in exc.message and "phone number" in exc.message and "seal" in exc.message
