"""Pinned trust: the keys a verifier obtained independently of what it checks, kept in a pin file.

A pin file is a small TOML file with one ``[[log]]`` table per log::

    [[log]]
    origin = "cambridgema.gov/evidence-ledger"           # the checkpoint origin it applies to
    vkey = "cambridgema.gov/evidence-ledger+1a2b3c4d+AR…" # the log verifier key (C2SP, type 0x01)
    trust_root = "3f2a…c9"                               # optional: admin key id, 64 lowercase hex
    witnesses = ["da.example/witness+…"]                  # optional: cosignature/v1 keys (type 0x04)
    min_witnesses = 1                                    # optional: 0..len(witnesses), default all
    profile = "production"                               # optional: standard (default) or production
    tsa_certs = ["tsa-ca.pem"]                           # optional: RFC 3161 TSA certificates (PEM)

A ``production`` pin is the verifier's side of a production ledger (docs/witness.md): it needs at
least two witness keys, none in the log origin's trust domain (``ledger.log.domains``), and ``min_witnesses`` >= 2 (2 when not given), and the verifiers require
that many cosignatures by default; a command-line ``--min-witnesses`` may raise it, not lower it, and
neither may ``--witness`` (which replaces the pinned keys, at least that many of them).

It is read from ``--trust FILE``, else ``$EVIDENCE_LEDGER_TRUST_FILE``, else
``$XDG_CONFIG_HOME/evidence-ledger/trust.toml`` (default ``~/.config/evidence-ledger/trust.toml``)
if that file exists. The entry whose origin equals the checked origin applies; command-line options
override it field by field. Everything is parsed strictly: an unknown key, a key of the wrong type,
a duplicate origin or a malformed value makes the whole file unusable (:class:`PinFileError`), so
that a typo never silently drops a pin.

``tsa_certs`` are paths of PEM files, relative to the pin file's directory: each holds the CA
certificate of a time-stamping authority (and optionally its TSA certificate); with any pinned, a
bundle's checkpoint must carry a time-stamp verifying under one of them (``ledger.log.timestamp``).
They are read when the pin file is read: a missing or unusable file makes the pin file unusable.

Imports only the standard library, ``ledger.note``, ``ledger.log.timestamp`` and their error types.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import MalformedInputError
from ledger.log import note, timestamp
from ledger.log.domains import same_trust_domain, trust_domain

TRUST_FILE_ENV = "EVIDENCE_LEDGER_TRUST_FILE"
PIN_FILE_NAME = "trust.toml"
MAX_PIN_FILE_BYTES = 1 << 20
HEX64 = re.compile(r"[0-9a-f]{64}")
_LOG_KEYS = ("origin", "vkey", "trust_root", "witnesses", "min_witnesses", "profile", "tsa_certs")
PRODUCTION, PRODUCTION_MIN_WITNESSES = "production", 2


class PinFileError(ValueError):
    """The pin file cannot be used; ``str()`` is one line naming the file and what is wrong."""


@dataclass(frozen=True)
class LogPin:
    """What one log's verifiers pin: its key, optionally its trust root and a witness policy."""

    origin: str
    vkey: note.VerifierKey
    trust_root: str | None = None
    witnesses: tuple[note.VerifierKey, ...] = ()
    min_witnesses: int | None = None
    profile: str = "standard"  # or "production": witnesses required (see the module's docstring)
    tsa_certs: tuple[str, ...] = ()  # PEM file paths as written (relative to the pin file's directory)

    def __post_init__(self) -> None:
        check_origin(self.origin)
        self._check_profile()
        if self.vkey.type != note.SIG_TYPE_ED25519:
            raise ValueError(f"vkey must be a log key (type 0x01), found type {self.vkey.type:#04x}")
        if self.trust_root is not None and not HEX64.fullmatch(self.trust_root):
            raise ValueError("trust_root is a key id: 64 lowercase hex digits")
        object.__setattr__(self, "witnesses", tuple(self.witnesses))
        for w in self.witnesses:
            if w.type != note.SIG_TYPE_COSIGNATURE_V1:
                raise ValueError(f"witness key {w.name} is not a cosignature/v1 key (type 0x04)")
        if len({(w.name, w.key_id) for w in self.witnesses}) != len(self.witnesses):
            raise ValueError("the same witness key is listed twice")
        if self.min_witnesses is not None and not 0 <= self.min_witnesses <= len(self.witnesses):
            raise ValueError(f"min_witnesses must be in [0, {len(self.witnesses)}] (the number of witnesses)")
        object.__setattr__(self, "tsa_certs", tuple(self.tsa_certs))
        if not all(isinstance(c, str) and c and "\n" not in c for c in self.tsa_certs):
            raise ValueError("tsa_certs must be a list of file paths")
        if len(set(self.tsa_certs)) != len(self.tsa_certs):
            raise ValueError("the same TSA certificate file is listed twice")

    def tsa_trusts(self, pin_file: Path) -> tuple[timestamp.TsaTrust, ...]:
        """The pinned TSA certificates, read from their files (relative to ``pin_file``'s directory);
        ValueError (one line) when one cannot be read or used."""
        trusts = []
        for name in self.tsa_certs:
            path = Path(name) if Path(name).is_absolute() else pin_file.parent / name
            try:
                with path.open("rb") as handle:
                    pem = handle.read(timestamp.MAX_PEM + 1)
            except OSError as exc:
                raise ValueError(f"TSA certificate {name}: cannot read it: {exc.strerror or exc}") from None
            try:
                trusts.append(timestamp.load_trust(pem, name))
            except MalformedInputError as exc:
                raise ValueError(f"TSA certificate {exc.message}") from None
        return tuple(trusts)

    def _check_profile(self) -> None:
        if self.profile not in ("standard", PRODUCTION):
            raise ValueError("profile must be 'standard' or 'production'")
        if self.profile != PRODUCTION:
            return
        if len(self.witnesses) < PRODUCTION_MIN_WITNESSES:
            raise ValueError(
                f"a production pin needs at least {PRODUCTION_MIN_WITNESSES} witness keys (--witness, from the"
                f" witnesses themselves), found {len(self.witnesses)}"
            )
        own = [w.name for w in self.witnesses if same_trust_domain(w.name, self.origin)]
        if own:
            raise ValueError(
                f"a production pin counts only witnesses in other trust domains than the log's "
                f"({trust_domain(self.origin)}): {', '.join(own)} is the log's own"
            )
        if self.min_witnesses is None:
            object.__setattr__(self, "min_witnesses", PRODUCTION_MIN_WITNESSES)
        elif self.min_witnesses < PRODUCTION_MIN_WITNESSES:
            raise ValueError(
                f"a production pin requires at least {PRODUCTION_MIN_WITNESSES} cosignatures, not {self.min_witnesses}"
            )

    def required_witnesses(self, asked: int | None) -> int | None:
        """The cosignatures to require when the command line asks for ``asked`` (None: not given) with
        the pinned witnesses: a production pin's minimum is a floor."""
        if self.profile == PRODUCTION and self.min_witnesses is not None:
            return max(self.min_witnesses, asked if asked is not None else 0)
        return self.min_witnesses if asked is None else asked

    def required_with_own(self, given: int, asked: int | None) -> int | None:
        """The cosignatures to require when the command line gives ``given`` witness keys of its own
        (``--witness``, replacing the pinned ones) and asks for ``asked`` (None: all of them). A
        production pin's minimum stays a floor: ``--witness``/``--min-witnesses`` never lower it, and
        fewer keys than it cannot meet it (MalformedInputError ``BAD_ARGUMENT``)."""
        if self.profile != PRODUCTION or self.min_witnesses is None:
            return asked
        if given < self.min_witnesses:
            raise MalformedInputError(
                f"the production pin for {self.origin} requires {self.min_witnesses} witness cosignatures: give at"
                f" least {self.min_witnesses} --witness keys, or none to use the pinned ones",
                code="BAD_ARGUMENT",
            )
        return max(self.min_witnesses, given if asked is None else asked)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "vkey": str(self.vkey),
            "trust_root": self.trust_root,
            "witnesses": [str(w) for w in self.witnesses],
            "min_witnesses": self.min_witnesses,
            **({"profile": self.profile} if self.profile != "standard" else {}),
            "tsa_certs": list(self.tsa_certs),
        }


@dataclass(frozen=True)
class PinFile:
    path: Path
    logs: tuple[LogPin, ...] = ()

    def get(self, origin: str) -> LogPin | None:
        return next((pin for pin in self.logs if pin.origin == origin), None)

    def with_pin(self, pin: LogPin) -> PinFile:
        """This file with ``pin`` replacing any entry for its origin (kept in place) or added last."""
        if self.get(pin.origin) is None:
            return PinFile(self.path, (*self.logs, pin))
        return PinFile(self.path, tuple(pin if p.origin == pin.origin else p for p in self.logs))


def check_origin(origin: object) -> str:
    if not isinstance(origin, str) or not origin:
        raise ValueError("origin must be a non-empty string")
    if any(unicodedata.category(ch) == "Cc" for ch in origin):
        raise ValueError("origin must be one line without control characters")
    return origin


# --- where the pin file is --------------------------------------------------------------------------


def default_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CONFIG_HOME/evidence-ledger/trust.toml`` (``~/.config/…`` when unset or relative)."""
    env = os.environ if environ is None else environ
    config = env.get("XDG_CONFIG_HOME", "")
    if not (config and Path(config).is_absolute()):
        try:
            config = str(Path.home() / ".config")
        except RuntimeError:  # no home directory: there is no default pin file
            return None
    return Path(config) / "evidence-ledger" / PIN_FILE_NAME


def pin_file_path(
    explicit: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Path | None, bool]:
    """``(path, required)``: the pin file to use and whether it must exist (it must when named by
    ``--trust`` or ``$EVIDENCE_LEDGER_TRUST_FILE``; the default one is used only if it exists)."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit, True
    if env.get(TRUST_FILE_ENV):
        return Path(env[TRUST_FILE_ENV]), True
    return default_path(env), False


def load_pins(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> PinFile | None:
    """The pin file that applies, or None when none is named and the default one does not exist."""
    path, required = pin_file_path(explicit, environ)
    if path is None or (not required and not path.exists()):
        return None
    if not path.is_file():
        how = "--trust" if explicit is not None else f"${TRUST_FILE_ENV}"
        raise PinFileError(f"pin file {path} (from {how}) does not exist or is not a file")
    return read_pin_file(path)


def read_pin_file(path: Path) -> PinFile:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PIN_FILE_BYTES + 1)
    except OSError as exc:
        raise PinFileError(f"pin file {path}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_PIN_FILE_BYTES:
        raise PinFileError(f"pin file {path}: larger than {MAX_PIN_FILE_BYTES} bytes")
    return parse_pin_file(data, path)


# --- reading --------------------------------------------------------------------------------------


def parse_pin_file(data: bytes, path: Path) -> PinFile:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise PinFileError(f"pin file {path}: not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        reason = (str(exc).splitlines() or ["syntax error"])[0]
        raise PinFileError(f"pin file {path}: not valid TOML: {reason}") from None
    unknown = sorted(set(doc) - {"log"})
    if unknown:
        raise PinFileError(f"pin file {path}: unknown top-level key {unknown[0]!r} (only [[log]] tables)")
    tables = doc.get("log", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise PinFileError(f"pin file {path}: 'log' must be [[log]] tables")
    logs: list[LogPin] = []
    for number, table in enumerate(tables, 1):
        try:
            pin = _log_pin(table)
        except ValueError as exc:
            raise PinFileError(f"pin file {path}: [[log]] number {number}: {exc}") from None
        if any(p.origin == pin.origin for p in logs):
            raise PinFileError(f"pin file {path}: origin {pin.origin!r} is pinned twice")
        try:
            pin.tsa_trusts(path)  # a pinned certificate that cannot be used makes the file unusable
        except ValueError as exc:
            raise PinFileError(f"pin file {path}: [[log]] number {number}: {exc}") from None
        logs.append(pin)
    return PinFile(path, tuple(logs))


def _log_pin(table: dict[str, Any]) -> LogPin:
    unknown = sorted(set(table) - set(_LOG_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (allowed: {', '.join(_LOG_KEYS)})")
    for required in ("origin", "vkey"):
        if required not in table:
            raise ValueError(f"{required!r} is missing")
    origin, trust_root = table["origin"], table.get("trust_root")
    if not isinstance(origin, str):
        raise ValueError("'origin' must be a string")
    if trust_root is not None and not isinstance(trust_root, str):
        raise ValueError("'trust_root' must be a string")
    witnesses = table.get("witnesses", [])
    if not isinstance(witnesses, list):
        raise ValueError("'witnesses' must be a list of verifier keys")
    min_witnesses = table.get("min_witnesses")
    if min_witnesses is not None and (isinstance(min_witnesses, bool) or not isinstance(min_witnesses, int)):
        raise ValueError("'min_witnesses' must be an integer")
    profile = table.get("profile", "standard")
    if not isinstance(profile, str):
        raise ValueError("'profile' must be a string")
    tsa_certs = table.get("tsa_certs", [])
    if not isinstance(tsa_certs, list) or not all(isinstance(c, str) for c in tsa_certs):
        raise ValueError("'tsa_certs' must be a list of file paths")
    return LogPin(
        origin=origin,
        vkey=parse_key(table["vkey"], "vkey", note.SIG_TYPE_ED25519),
        trust_root=trust_root,
        witnesses=tuple(parse_key(w, "witness key", note.SIG_TYPE_COSIGNATURE_V1) for w in witnesses),
        min_witnesses=min_witnesses,
        profile=profile,
        tsa_certs=tuple(tsa_certs),
    )


def parse_key(text: object, what: str, sig_type: int) -> note.VerifierKey:
    """A C2SP verifier key of ``sig_type``; ValueError (one line) otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string")
    try:
        key = note.parse_verifier_key(text.strip())
    except MalformedInputError as exc:
        raise ValueError(f"{what}: {exc.message}") from None
    if key.type != sig_type:
        raise ValueError(f"{what}: expected a key of type {sig_type:#04x}, found {key.type:#04x}")
    return key


# --- writing --------------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_pin_file(pins: PinFile) -> bytes:
    """The TOML text of ``pins``; reading it back gives the same pins."""
    lines = ["# evidence-ledger pinned trust (see `evidence-ledger trust --help`)."]
    for pin in pins.logs:
        lines += [
            "",
            "[[log]]",
            f"origin = {_toml_string(pin.origin)}",
            f"vkey = {_toml_string(str(pin.vkey))}",
        ]
        if pin.trust_root is not None:
            lines.append(f"trust_root = {_toml_string(pin.trust_root)}")
        if pin.witnesses:
            lines += ["witnesses = [", *[f"  {_toml_string(str(w))}," for w in pin.witnesses], "]"]
        if pin.min_witnesses is not None:
            lines.append(f"min_witnesses = {pin.min_witnesses}")
        if pin.profile != "standard":
            lines.append(f"profile = {_toml_string(pin.profile)}")
        if pin.tsa_certs:
            lines += ["tsa_certs = [", *[f"  {_toml_string(c)}," for c in pin.tsa_certs], "]"]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if parse_pin_file(data, pins.path).logs != pins.logs:  # never write what would read back differently
        raise AssertionError("the pin file does not read back as written")
    return data
