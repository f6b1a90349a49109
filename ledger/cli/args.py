"""Arguments every command reads the same way: verifier keys given as text or as a file, JSON given
inline, as @FILE or as - (standard input). A value that cannot be used is a ``MalformedInputError`` (``BAD_ARGUMENT``),
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


#: how much a JSON argument read from standard input may be (an event body is far smaller)
STDIN_LIMIT = 4 * 1024 * 1024


def read_stdin(what: str) -> bytes:
    import sys

    if sys.stdin.isatty():
        print(f"reading the {what} (JSON) from standard input; end with Ctrl-D", file=sys.stderr)
    raw = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    if len(raw) > STDIN_LIMIT:
        raise MalformedInputError(f"the {what} on standard input is larger than 4 MiB", code="BAD_ARGUMENT")
    return raw


def read_json_arg(value: str, what: str) -> Any:
    """A JSON argument given inline, as @FILE, or as ``-`` (standard input); parsed strictly."""
    from ledger.envelope.canonical import parse_strict

    if value == "-":
        raw = read_stdin(what)
    elif value.startswith("@"):
        raw = read_file(Path(value[1:]), f"{what} file")
    else:
        raw = value.encode("utf-8")
    if not raw.strip():
        raise MalformedInputError(f"{what}: empty; give a JSON object", code="BAD_ARGUMENT")
    try:
        return parse_strict(raw)
    except MalformedInputError as exc:
        raise MalformedInputError(f"{what}: {exc.message}", code="BAD_ARGUMENT") from None
