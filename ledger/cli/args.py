"""Arguments every command reads the same way: verifier keys given as text or as a file, JSON given
inline or as @FILE. A value that cannot be used is a ``MalformedInputError`` (``BAD_ARGUMENT``),
which ``ledger.cli.errors`` turns into exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.errors import MalformedInputError


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MalformedInputError(f"cannot read {what} {path}: {exc.strerror}", code="BAD_ARGUMENT") from None


def key_text(value: str, what: str = "verifier key") -> str:
    """A verifier key given as text (``name+id+base64``), or the path of a file holding it."""
    candidate = Path(value)
    if "+" not in value or candidate.is_file():
        try:
            return read_file(candidate, f"{what} file").decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MalformedInputError(f"{what} file {value} is not UTF-8 text", code="BAD_ARGUMENT") from None
    return value.strip()


def verifier_key(value: str, what: str = "verifier key", sig_type: int | None = None) -> Any:
    """A parsed C2SP verifier key (of ``sig_type`` when given)."""
    from ledger.log import note

    try:
        key = note.parse_verifier_key(key_text(value, what))
    except MalformedInputError as exc:
        raise MalformedInputError(f"{what}: {exc.message}", code="BAD_ARGUMENT") from None
    if sig_type is not None and key.type != sig_type:
        raise MalformedInputError(
            f"{what}: expected a key of type {sig_type:#04x}, found {key.type:#04x}", code="BAD_ARGUMENT"
        )
    return key


def read_json_arg(value: str, what: str) -> Any:
    """A JSON argument given inline or as @FILE; parsed strictly."""
    from ledger.envelope.canonical import parse_strict

    raw = read_file(Path(value[1:]), f"{what} file") if value.startswith("@") else value.encode("utf-8")
    try:
        return parse_strict(raw)
    except MalformedInputError as exc:
        raise MalformedInputError(f"{what}: {exc.message}", code="BAD_ARGUMENT") from None
