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
_NANP = rf"(?:\+?1{_SEP}?)?(?:\([2-9]\d\d\)\s?|[2-9]\d\d{_SEP}?)[2-9]\d\d{_SEP}?\d{{4}}"
_PHONE = (
    rf"{_NOT_ID}{_NANP}(?![A-Za-z\d_]|[\-.]\d)"
    rf"|(?<![\w+])\+\d(?:[\s.\-]?\(?\d\)?){{7,14}}{_E}"
    rf"|(?i:{_B}(?:phone|ph|tel|telephone|cell|cellphone|mobile|m[oó]vil|celular|tel[eé]fono|"
    r"whats\s?app|fax|call(?:ed)?(?:\s+back)?(?:\s+at)?|text(?:ed)?(?:\s+at)?)(?:\s+(?:is|was|es|at))?)"
    r"[\s:#.=]{0,3}\(?\d(?:[\s.\-]?\(?\d\)?){6,14}"
    + _E
)
_EMAIL = r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}"
_SSN = (
    rf"{_NOT_ID}\d{{3}}(?P<ssn_sep>[\-\s])\d{{2}}(?P=ssn_sep)\d{{4}}(?![A-Za-z\d_]|[\-.]\d)"
    rf"|(?i:{_B}(?:ssn|ss\#|s\.s\.n\.?|itin|social\s+security(?:\s+(?:number|no\.?|\#))?))"
    r"[\s:#.=]{0,3}\d{3}[\s.\-]?\d{2}[\s.\-]?\d{4}" + _E
)
_A_NUMBER = (
    rf"(?<![A-Za-z\d_\-/])A(?:[\-\s#:]|\#\s){{0,2}}(?:\d{{8,9}}|\d{{2,3}}(?P<a_sep>[\-\s])\d{{3}}(?P=a_sep)\d{{3}}){_E}"
    rf"|(?i:{_B}(?:a[\-\s]?(?:number|no\.?|\#)|alien\s+(?:registration\s+)?(?:number|no\.?|\#)|"
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

_KIND_PATTERNS = (
    ("email", _EMAIL),
    ("date_of_birth", _DOB),
    ("ssn", _SSN),
    ("a_number", _A_NUMBER),
    ("phone", _PHONE),
)
#: one pattern, one pass: the first alternative that matches at the leftmost position names the kind
_SCAN = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _KIND_PATTERNS))
#: every kind needs one of these; most free text has none and is passed after this search
_MAYBE = re.compile(r"[\d@]")


def _kind(match: re.Match[str]) -> str:
    return next(kind for kind, _ in _KIND_PATTERNS if match.group(kind) is not None)


def find(text: str) -> str | None:
    """The kind (a key of :data:`KINDS`) of the first personal datum in ``text``, or None."""
    if _MAYBE.search(text) is None:
        return None
    match = _SCAN.search(text)
    return None if match is None else _kind(match)


def kinds(text: str) -> list[str]:
    """Every kind found in ``text``, in order of appearance (a kind may repeat)."""
    if _MAYBE.search(text) is None:
        return []
    return [_kind(m) for m in _SCAN.finditer(text)]


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


def free_texts(obj: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) of every free-text field of a parsed event or nested value."""
    for f in fields(obj):
        codec = f.metadata.get("codec")
        if codec is not None:
            yield from _texts(codec, getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name)


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
