"""The free-text guard: personal data typed into a narrative, summary, reason or note.

A signed event never changes and is copied into every bundle, so a phone number typed into a
narrative would be published with it forever. Personal data belongs in the sealed store
(``reporter: {"sealed_ref", "commitment"}``); free text is scanned for the forms it usually takes
and a new event that carries one is refused (``PERSONAL_DATA_IN_FREE_TEXT``) naming the field and
the kind of data, never the value.

The guard is for *new* appends only (``ledger.append``): parsing, replaying, auditing and verifying
stored events never run it, so an event accepted before a pattern existed keeps verifying.

What is looked for (``KINDS``); every kind needs a digit or an ``@``, so text without one is
passed after one cheap search:

* ``phone``: North American numbers (``+1 617 555 0100``, ``(617) 555-0100``, ``617.555.0100``,
  ``6175550100``; area code and exchange start with 2-9), ``+`` and 8 to 15 digits (international),
  and 7 to 15 digits after a word such as phone, cell, tel or call;
* ``email``: ``local@domain.tld`` (Unicode letters allowed);
* ``ssn``: a US social security or taxpayer number, ``123-45-6789`` / ``123 45 6789``, or nine
  digits after SSN/ITIN/"social security";
* ``a_number``: an immigration A-number, ``A`` then 8 or 9 digits (``A123456789``,
  ``A-12345678``, ``A# 123 456 789``), or 8-9 digits after "A-number"/"alien number"/"USCIS";
* ``date_of_birth``: a date *with birth context*: ``DOB 01/02/1990``, ``born 1990-01-02``,
  ``date of birth: January 2, 1990``, ``age 34, 01/02/1990``, and the Spanish, Portuguese and
  French forms. A bare date is an incident date and passes: a narrative is full of them.

Digits are Unicode digits (``\\d``); word boundaries are ASCII letters and digits, so a number
written right after a letter of another script is still found. Names and street addresses of
people are not detectable by pattern; the guard is a net for the common slips, not a proof.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from domain.errors import RuleViolation
from domain.fields import Either, ListOf, Nullable, Obj

CODE = "PERSONAL_DATA_IN_FREE_TEXT"

#: kind -> how an error names it
KINDS: dict[str, str] = {
    "phone": "a phone number",
    "email": "an e-mail address",
    "ssn": "a social security or taxpayer number",
    "a_number": "an immigration A-number",
    "date_of_birth": "a date of birth",
}

# Not inside a word, an id or a longer number. ASCII letters only: a number right after a letter of
# another script (no spaces in Chinese or Japanese) is still found.
_B = r"(?<![A-Za-z\d_])"
_E = r"(?![A-Za-z\d_])"
_NOT_ID = r"(?<![A-Za-z\d_\-./+])"  # nor a segment of an id, a date or a decimal: CPD-2026-..., 1.5
_SEP = r"[\s.\-]"
#: every kind needs one of these; most free text has none and is passed after this search
_MAYBE = re.compile(r"[\d@]")
# one separator throughout (617-555-0100, 617 555 0100, 6175550100) or the area code in brackets:
# "524287 1000" is two numbers, not a phone number
_NANP = (
    rf"(?:\+?1{_SEP}?)?(?:\([2-9]\d\d\)\s?[2-9]\d\d{_SEP}?|[2-9]\d\d(?P<nanp_sep>{_SEP}?)[2-9]\d\d(?P=nanp_sep))"
    r"\d{4}"
)
_ID_END = r"(?![A-Za-z\d_]|[\-.]\d)"  # nor followed by more of an id or a number
_PHONE = rf"{_NOT_ID}{_NANP}{_ID_END}|(?<![\w+])\+\d(?:[\s.\-]?\(?\d\)?){{7,14}}{_E}"
_PHONE_WORDS = (
    rf"(?i:{_B}(?:phone|ph|tel|telephone|cell|cellphone|mobile|m[oó]vil|celular|tel[eé]fono|"
    r"whats\s?app|fax|call(?:ed)?(?:\s+back)?(?:\s+at)?|text(?:ed)?(?:\s+at)?)(?:\s+(?:is|was|es|at))?)"
    r"[\s:#.=]{0,3}\(?\d(?:[\s.\-]?\(?\d\)?){6,14}" + _E
)
_EMAIL = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}")
_SSN = rf"{_NOT_ID}\d{{3}}(?P<ssn_sep>[\-\s])\d{{2}}(?P=ssn_sep)\d{{4}}{_ID_END}"
_SSN_WORDS = (
    rf"(?i:{_B}(?:ssn|ss\#|s\.s\.n\.?|itin|social\s+security(?:\s+(?:number|no\.?|\#))?))"
    r"[\s:#.=]{0,3}\d{3}[\s.\-]?\d{2}[\s.\-]?\d{4}" + _E
)
_A_NUMBER = (
    r"(?<![A-Za-z\d_\-/])A(?:[\-\s#:]|\#\s){0,2}"
    rf"(?:\d{{8,9}}|\d{{2,3}}(?P<a_sep>[\-\s])\d{{3}}(?P=a_sep)\d{{3}}){_E}"
)
_A_NUMBER_WORDS = (
    rf"(?i:{_B}(?:a[\-\s]?(?:number|no\.?|\#)|alien\s+(?:registration\s+)?(?:number|no\.?|\#)|"
    r"uscis\s+(?:number|no\.?|\#)))[\s:#.=]{0,3}\d{2,3}[\-\s]?\d{3}[\-\s]?\d{3}" + _E
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|enero|febrero|marzo|abril|mayo|junio|"
    r"julio|agosto|septiembre|octubre|noviembre|diciembre|janeiro|fevereiro|mar[cç]o|maio|junho|julho|"
    r"setembro|outubro|novembro|dezembro|janvier|f[eé]vrier|mars|avril|mai|juin|juillet|ao[uû]t|"
    r"septembre|octobre|novembre|d[eé]cembre)\.?"
)
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er)?\s+(?:de\s+)?{_MONTH},?\s+(?:de\s+)?\d{{4}})"
)
_DOB = (
    rf"(?i:{_B}(?:d\.?\s?o\.?\s?b\.?|date\s+of\s+birth|birth\s?date|birthday|born(?:\s+(?:on|in))?|"
    r"fecha\s+de\s+nacimiento|nacid[oa](?:\s+el)?|data\s+de\s+nascimento|nascid[oa](?:\s+em)?|"
    r"date\s+de\s+naissance|n[ée]e?\s+le|"
    r"age[ds]?\s*:?\s*\d{1,3}\s*[,;(/]|\d{1,3}\s*(?:y/?o|yrs?\.?(?:\s+old)?|years?\s+old)\s*[,;(/]?)"
    rf"(?:\s+(?:is|was|es|of))?[\s:#=,.()\-]{{0,4}}{_DATE}){_E}"
)


def _alternatives(*named: tuple[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in named))


#: numbers that are personal data by their form alone
_NUMBERS = _alternatives(("ssn", _SSN), ("a_number", _A_NUMBER), ("phone", _PHONE))
#: numbers and dates that are personal data after a word that says what they are
_AFTER_WORDS = _alternatives(
    ("date_of_birth", _DOB), ("ssn", _SSN_WORDS), ("a_number", _A_NUMBER_WORDS), ("phone", _PHONE_WORDS)
)
#: the words of _AFTER_WORDS as the lowercase tokens they are written with: a window before a run of
#: digits that holds none of them is not searched with it (a quick test for a costly search)
_WORDS = frozenset({
    "dob", "b", "birth", "birthdate", "birthday", "born", "nacido", "nacida", "nacimiento", "nascido", "nascida",
    "nascimento", "naissance", "né", "née", "ne", "nee", "age", "aged", "ages", "yo", "y/o", "yr", "yrs", "year",
    "years", "phone", "ph", "tel", "telephone", "cell", "cellphone", "mobile", "móvil", "movil", "celular",
    "teléfono", "telefono", "whatsapp", "whats", "fax", "call", "called", "text", "texted", "ssn", "ss#", "ss",
    "itin", "social", "a#", "number", "no", "alien", "uscis",
})
#: lowercase text -> its tokens with .split(): dots dropped (d.o.b. -> dob), the other separators of
#: those words and digits made spaces (34yo -> yo)
_TOKENS = str.maketrans({".": None, **{c: " " for c in ",;:()=-0123456789"}})


def _has_words(text: str) -> bool:
    return not _WORDS.isdisjoint(text.lower().translate(_TOKENS).split())


#: a run of digits and the separators numbers and dates are written with; every kind but e-mail has
#: one of at least four characters (a date of birth's year, or its day, month and year)
_RUN = re.compile(r"\d[\d\s().,/\-]{2,}\d")
#: _NUMBERS need at least eight digits (an A-number; an international number after its +)
_MIN_NUMBER = 8
#: how far before its digits the word of an _AFTER_WORDS match may start
_WINDOW = 64
_PRIORITY = {kind: i for i, kind in enumerate(("email", "date_of_birth", "ssn", "a_number", "phone"))}


def _may_be_number(text: str, run: str, start: int) -> bool:
    """Whether a _NUMBERS pattern could match this run: nine digits or more (a social security or
    phone number), or eight after an A or a + (an A-number, an international number)."""
    digits = sum(map(str.isdigit, run))
    return digits >= 9 or (digits == _MIN_NUMBER and ("A" in text[max(0, start - 3) : start] or
                                                     "+" in text[max(0, start - 3) : start]))


def _kind(match: re.Match[str]) -> str:
    kind = match.lastgroup
    assert kind is not None and kind in KINDS
    return kind


def _findings(text: str) -> list[tuple[int, str]]:
    """(start, kind) of each personal datum in ``text``, in order; overlapping finds count once.

    One pass over the text for runs of digits (and, if there is an @, one for e-mail addresses);
    the number patterns run only over a run and the word patterns only over a window before a run
    that holds one of their words: the guard is on the append path and most runs are times, dates
    and ids."""
    spans: list[tuple[int, int, str]] = []
    if "@" in text:
        spans.extend((m.start(), m.end(), "email") for m in _EMAIL.finditer(text))
    size = len(text)
    words = _has_words(text)  # most text has none of them
    for run in _RUN.finditer(text):
        start, end = run.span()
        stop = min(size, end + 2)  # the patterns' end checks look two characters past the run
        if end - start >= _MIN_NUMBER and _may_be_number(text, run.group(), start):
            # from 3 characters before the run: "+1 ", "(", "A# " belong to the number
            spans.extend((m.start(), m.end(), _kind(m)) for m in _NUMBERS.finditer(text, max(0, start - 3), stop))
        low = max(0, start - _WINDOW)
        if words and _has_words(text[low:start]):
            spans.extend((m.start(), m.end(), _kind(m)) for m in _AFTER_WORDS.finditer(text, low, stop))
    spans.sort(key=lambda span: (span[0], _PRIORITY[span[2]]))
    found: list[tuple[int, str]] = []
    covered = -1
    for begin, finish, kind in spans:
        if begin >= covered:
            found.append((begin, kind))
            covered = finish
    return found


def find(text: str) -> str | None:
    """The kind (a key of :data:`KINDS`) of the first personal datum in ``text``, or None."""
    if _MAYBE.search(text) is None:
        return None
    found = _findings(text)
    return found[0][1] if found else None


def kinds(text: str) -> list[str]:
    """Every kind found in ``text``, in order of appearance (a kind may repeat)."""
    if _MAYBE.search(text) is None:
        return []
    return [kind for _, kind in _findings(text)]


# ----------------------------------------------------------------------------- events


def _texts(codec: Any, value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, value) of every free-text value under ``codec`` (codecs declare ``free_text``)."""
    if value is None:
        return
    if getattr(codec, "free_text", False):
        yield path, value
    elif isinstance(codec, Nullable):
        yield from _texts(codec.inner, value, path)
    elif isinstance(codec, ListOf):
        for i, item in enumerate(value):
            yield from _texts(codec.item, item, f"{path}[{i}]")
    elif isinstance(codec, Either):
        if value != codec.literal:
            yield from _texts(codec.other, value, path)
    elif isinstance(codec, Obj):
        yield from free_texts(value, path)


@cache
def _declared(cls: Any) -> tuple[tuple[str, Any], ...]:
    """(field name, codec) of a declared type, in order (read once per type: the guard is hot)."""
    return tuple((f.name, f.metadata["codec"]) for f in fields(cls) if "codec" in f.metadata)


def free_texts(obj: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) of every free-text field of a parsed event or nested value."""
    for name, codec in _declared(obj.__class__):
        yield from _texts(codec, getattr(obj, name), f"{prefix}.{name}" if prefix else name)


def free_text_paths(cls: type, prefix: str = "") -> Iterator[str]:
    """The declared free-text field paths of an event type (``[]`` marks a list), from its codecs."""
    for f in fields(cls):
        codec = f.metadata.get("codec")
        if codec is not None:
            yield from _paths(codec, f"{prefix}.{f.name}" if prefix else f.name)


def _paths(codec: Any, path: str) -> Iterator[str]:
    if getattr(codec, "free_text", False):
        yield path
    elif isinstance(codec, Nullable):
        yield from _paths(codec.inner, path)
    elif isinstance(codec, ListOf):
        yield from _paths(codec.item, f"{path}[]")
    elif isinstance(codec, Either):
        yield from _paths(codec.other, path)
    elif isinstance(codec, Obj):
        yield from free_text_paths(codec.cls, path)


@dataclass(frozen=True, slots=True)
class Finding:
    """Where personal data was found: the field's path and the kind; never the value."""

    field: str
    kind: str

    def error(self) -> RuleViolation:
        return RuleViolation(
            f"{self.field}: free text looks like it holds {KINDS[self.kind]}; a signed event is kept and"
            " published in bundles forever, so seal personal data (POST /v1/sealed or `evidence-ledger"
            " seal`) and refer to it by its sealed_ref, or leave it out",
            code=CODE,
            field=self.field,
            kind=self.kind,
        )


def scan_event(event: Any) -> Finding | None:
    """The first free-text field of a parsed event that holds personal data, or None."""
    for path, text in free_texts(event):
        kind = find(text)
        if kind is not None:
            return Finding(path, kind)
    return None


def refuse_personal_data(event: Any) -> None:
    """Raise ``PERSONAL_DATA_IN_FREE_TEXT`` if a free-text field of ``event`` holds personal data.

    For new appends only: stored events are never re-judged."""
    finding = scan_event(event)
    if finding is not None:
        raise finding.error()


__all__ = [
    "CODE",
    "KINDS",
    "Finding",
    "find",
    "free_text_paths",
    "free_texts",
    "kinds",
    "refuse_personal_data",
    "scan_event",
]
