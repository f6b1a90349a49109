"""`evidence-ledger trust …`: pin the keys to verify against, per log origin, in the pin file.

The pin file (``ledger.verify.trust``) is read by ``verify`` and ``log verify-*``: ``--trust FILE``,
else ``$EVIDENCE_LEDGER_TRUST_FILE``, else ``~/.config/evidence-ledger/trust.toml`` (under
``$XDG_CONFIG_HOME`` when set). ``trust pin`` writes it atomically with mode 0600. Like the offline
verifier, these commands import no database driver and no web framework.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli.errors import fail
from ledger.cli.verify import TrustFile, load_pin_file, verifier_key_arg

trust_app = typer.Typer(
    no_args_is_help=True,
    help="Pinned trust: the log key, trust root and witnesses to verify each log origin against.",
)


def _pin_lines(pin: Any) -> list[str]:
    witnesses = [f"    witness:    {w}" for w in pin.witnesses]
    required = "all" if pin.min_witnesses is None else str(pin.min_witnesses)
    return [
        f"  origin:       {pin.origin}",
        f"    log key:    {pin.vkey}",
        "    trust root: "
        + (pin.trust_root or "not pinned (`verify` of a bundle says UNPINNED; pin it with --trust-root)"),
        *witnesses,
        *([f"    witnesses required: {required} of {len(pin.witnesses)}"] if pin.witnesses else []),
        *(["    profile:    production (the witnesses' cosignatures are required by default)"]
          if pin.profile == "production" else []),
        *[f"    TSA certificate: {c}" for c in pin.tsa_certs],
    ]


@trust_app.command("pin")
def trust_pin(
    origin: Annotated[str, typer.Option("--origin", help="the log's origin, as in its checkpoints")],
    vkey: Annotated[
        str,
        typer.Option("--vkey", help="the log verifier key the City published (text or a file holding it)"),
    ],
    trust_root: Annotated[
        str | None, typer.Option("--trust-root", help="the trust-root admin key id the City published")
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option("--witness", help="witness verifier key (text or file); repeat")
    ] = None,
    min_witnesses: Annotated[
        int | None,
        typer.Option("--min-witnesses", help="valid cosignatures required (default: all witnesses)"),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="standard, or production: needs 2 or more --witness keys and requires 2 cosignatures (or"
            " --min-witnesses, at least 2) by default (docs/witness.md)",
        ),
    ] = "standard",
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option("--tsa-cert", help="a time-stamping authority's CA certificate (PEM file); repeat"),
    ] = None,
    trust: TrustFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="print what was pinned as JSON")] = False,
) -> None:
    """Pin a log's keys for its origin (replacing an earlier pin of that origin) in the pin file."""
    from ledger.durable import write_atomic
    from ledger.log import note
    from ledger.verify import (
        HEX64,
        LogPin,
        PinFile,
        PinFileError,
        check_origin,
        pin_file_path,
        read_pin_file,
        render_pin_file,
    )

    try:
        check_origin(origin)
    except ValueError as exc:
        fail(f"--origin: {exc}", 2)
    if trust_root is not None and not HEX64.fullmatch(trust_root):
        fail("--trust-root is a key id: 64 lowercase hex digits", 2)
    key = verifier_key_arg(vkey, "--vkey", note.SIG_TYPE_ED25519)
    witnesses = tuple(verifier_key_arg(w, "--witness", note.SIG_TYPE_COSIGNATURE_V1) for w in witness or [])
    if min_witnesses is not None and not 0 <= min_witnesses <= len(witnesses):
        fail(f"--min-witnesses must be in [0, {len(witnesses)}] (the number of --witness keys)", 2)
    if profile not in ("standard", "production"):
        fail("--profile must be standard or production", 2)
    path, _ = pin_file_path(trust)
    if path is None:
        fail("no place for the pin file: give --trust FILE (there is no home directory)", 2)
        return
    try:
        pin = LogPin(origin, key, trust_root, witnesses, min_witnesses, profile=profile,
                     tsa_certs=_cert_paths(tsa_cert or [], path))
        pin.tsa_trusts(path)
    except ValueError as exc:
        fail(str(exc), 2, error="BAD_ARGUMENT")
    try:
        current = read_pin_file(path) if path.exists() else PinFile(path)
    except PinFileError as exc:
        fail(f"{exc} (fix or remove it first)", 2, error="BAD_PIN_FILE")
    replaced = current.get(origin) is not None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, render_pin_file(current.with_pin(pin)), mode=0o600)
    except OSError as exc:
        fail(f"cannot write the pin file {path}: {exc.strerror or exc}", 2, error="CANNOT_WRITE")
    if as_json:
        import json

        typer.echo(json.dumps({
            "origin": origin, "pin_file": str(path), "replaced": replaced, "vkey": str(pin.vkey),
            "trust_root": pin.trust_root, "witnesses": [str(w) for w in pin.witnesses],
            "min_witnesses": pin.min_witnesses, "profile": pin.profile, "tsa_certs": list(pin.tsa_certs),
        }, indent=2, sort_keys=True))
        return
    typer.echo(f"{'replaced the pin' if replaced else 'pinned'} for {origin} in {path}")
    for line in _pin_lines(pin):
        typer.echo(line)


def _cert_paths(files: list[Path], pin_file: Path) -> tuple[str, ...]:
    """The certificate files as the pin file names them: relative to its directory when inside it,
    else absolute (a pin file is read from anywhere)."""
    base = pin_file.resolve().parent
    names = []
    for file in files:
        full = file.resolve()
        names.append(str(full.relative_to(base)) if full.is_relative_to(base) else str(full))
    return tuple(names)


@trust_app.command("show")
def trust_show(
    origin: Annotated[str | None, typer.Option("--origin", help="show only this origin's pin")] = None,
    trust: TrustFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show the pin file that `verify` and `log verify-*` would use, and what it pins.

    Exit 0; 1 if --origin is given and has no pin; 2 if the pin file is unusable.
    """
    from ledger.verify import pin_file_path

    path, _ = pin_file_path(trust)
    pins = load_pin_file(trust)
    logs = [] if pins is None else [p for p in pins.logs if origin is None or p.origin == origin]
    if as_json:
        doc = {"pin_file": None if path is None else str(path), "exists": pins is not None}
        typer.echo(json.dumps({**doc, "logs": [p.to_json() for p in logs]}, indent=2, ensure_ascii=False))
    elif pins is None:
        typer.echo(f"no pin file: {path} does not exist (write one with `evidence-ledger trust pin`)")
    else:
        typer.echo(f"pin file {pins.path}: {len(pins.logs)} log(s)")
        for pin in logs:
            typer.echo("\n".join(_pin_lines(pin)))
        _warn_if_writable_by_others(pins.path)
    if origin is not None and not logs:
        fail(f"no pin for origin {origin} (the pinned origins: evidence-ledger trust show)", 1, error="NO_PIN")


def _warn_if_writable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        typer.echo(f"warning: {path} is writable by other users, who could change what you trust", err=True)
