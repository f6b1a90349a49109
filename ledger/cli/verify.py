"""`evidence-ledger verify BUNDLE`: check an evidence bundle offline.

Needs only the bundle and public keys: imports no database driver, no eventsourcing and no web
framework (a test runs it with those imports blocked). The verdict is VERIFIED only when the log
verifier key and the trust root are both pinned (given here, or read from the pin file: see
``ledger.verify.trust``). Exit codes: 0 verified, 1 findings, 2 the bundle itself (not a zip, no
manifest), the pin file or the arguments are unusable, 4 no finding but a pin is missing: verified
but not anchored to a trust root, not a pass (0 with ``--allow-unpinned``; the verdict stays
UNPINNED).

A VERIFIED bundle's checkpoint is compared with the one this client remembers for the log
(``ledger.verify.memory``, docs/client-state.md); ``--previous OLD`` compares the bundle with an older
one of the same case (``ledger.verify.previous``); ``--server URL`` only fetches consistency proofs
(standard library ``urllib``: still no HTTP client package). Exit 3: that server is unreachable.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import MalformedInputError
from ledger.cli.args import verifier_key
from ledger.cli.errors import fail

_HEX64 = re.compile(r"[0-9a-f]{64}")


def verifier_key_arg(value: str, what: str, sig_type: int) -> Any:
    """A verifier key given as text or as a file holding it; exit 2 if unusable."""
    try:
        return verifier_key(value, what, sig_type)
    except MalformedInputError as exc:
        fail(exc.message, 2, error=exc.code)


def _options(
    vkey: str | None,
    witness: list[str] | None,
    min_witnesses: int | None,
    media: Path | None,
    trust_root: str | None,
    workers: int | None,
    pins: Any,
    tsa_cert: list[Path] | None = None,
) -> Any:
    from ledger.log import note
    from ledger.verify import VerifyOptions

    if min_witnesses is not None and min_witnesses < 0:
        fail("--min-witnesses must be >= 0", 2)
    if trust_root is not None and not _HEX64.fullmatch(trust_root):
        fail("--trust-root is a key id: 64 lowercase hex digits", 2)
    if media is not None and not media.is_dir():
        fail(f"--media {media} is not a folder", 2)
    if workers is not None and workers < 1:
        fail("--workers must be >= 1", 2)
    witnesses = tuple(verifier_key_arg(w, "--witness", note.SIG_TYPE_COSIGNATURE_V1) for w in witness or [])
    if len({(w.name, w.key_id) for w in witnesses}) != len(witnesses):
        fail("the same --witness key is given twice", 2)
    return VerifyOptions(
        vkey=None if vkey is None else verifier_key_arg(vkey, "--vkey", note.SIG_TYPE_ED25519),
        witnesses=witnesses,
        min_witnesses=min_witnesses,
        media_dir=media,
        trust_root=trust_root,
        workers=workers or os.cpu_count() or 1,
        pins=pins,
        tsa_certs=tsa_trusts(tsa_cert or []),
    )


def tsa_trusts(files: list[Path]) -> tuple[Any, ...]:
    """The TSA certificates given with --tsa-cert, read and checked; exit 2 if one is unusable."""
    from ledger.log import timestamp

    trusts = []
    for file in files:
        try:
            with file.open("rb") as handle:
                pem = handle.read(timestamp.MAX_PEM + 1)
            trusts.append(timestamp.load_trust(pem, file.name))
        except OSError as exc:
            fail(f"--tsa-cert {file}: cannot read it: {exc.strerror or exc}", 2, error="BAD_TSA_CERT")
        except MalformedInputError as exc:
            fail(f"--tsa-cert {exc.message}", 2, error=exc.code)
    return tuple(trusts)


TsaCert = Annotated[
    list[Path] | None,
    typer.Option(
        "--tsa-cert",
        help="a time-stamping authority's CA certificate (PEM; may also hold the TSA certificate); repeat."
        " With one, the checkpoint must carry a valid RFC 3161 time-stamp by it",
    ),
]


def load_pin_file(trust: Path | None) -> Any:
    """The pin file that applies (``--trust``, ``$EVIDENCE_LEDGER_TRUST_FILE``, the default one if it
    exists), or None; exit 2 with one line if it is unusable."""
    from ledger.verify import PinFileError, load_pins

    try:
        return load_pins(trust)
    except PinFileError as exc:
        fail(str(exc), 2, error="BAD_PIN_FILE")


TrustFile = Annotated[
    Path | None,
    typer.Option(
        "--trust",
        help="pin file (TOML) with the keys to trust per log origin "
        "\\[default: $EVIDENCE_LEDGER_TRUST_FILE, else ~/.config/evidence-ledger/trust.toml if it exists]",
    ),
]
AllowUnpinned = Annotated[
    bool,
    typer.Option(
        "--allow-unpinned",
        help="exit 0 instead of 4 when nothing is wrong but a key is not pinned (the verdict stays UNPINNED)",
    ),
]


def verify(
    bundle: Annotated[Path, typer.Argument(help="the evidence bundle (.zip) to check")],
    vkey: Annotated[
        str | None, typer.Option("--vkey", help="log verifier key (text or file) published by the City")
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option("--witness", help="witness verifier key (text or file); repeat")
    ] = None,
    min_witnesses: Annotated[
        int | None, typer.Option("--min-witnesses", help="valid cosignatures required (default: all keys)")
    ] = None,
    media: Annotated[
        Path | None,
        typer.Option("--media", help="folder with media files named by SHA-256 (or ab/cd/<sha256>)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the machine-readable report")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="also write a self-contained HTML report")
    ] = None,
    trust_root: Annotated[
        str | None,
        typer.Option("--trust-root", help="pin the trust root: the admin key id the City published"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="processes, this one included: the others check signatures (default: all cores)"),
    ] = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
    previous: Annotated[
        Path | None,
        typer.Option("--previous", help="an older bundle of the same case: prove this one extends it"),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="the log's server, asked only for consistency proofs (to prove tree-level consistency with "
            "the remembered checkpoint and with --previous)",
        ),
    ] = None,
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles",
            help="the log published as C2SP tlog-tiles (URL prefix or directory): the bundle's checkpoint must be"
            " consistent with its checkpoint and every leaf included (proofs computed from the tiles)",
        ),
    ] = None,
    tsa_cert: TsaCert = None,
) -> None:
    """Verify an evidence bundle offline: signatures, chains, proofs, checkpoint, witnesses, media, rules.

    VERIFIED (exit 0) needs no finding and both --vkey and --trust-root pinned (here or in the pin
    file); with a pin missing the verdict is UNPINNED (exit 4, not a pass); any finding is FAILED (exit 1).
    A VERIFIED bundle's checkpoint is compared with the one remembered for its log (client state
    directory, $EVIDENCE_LEDGER_STATE_DIR): a fork is EQUIVOCATION (exit 1).
    """
    from dataclasses import replace

    from domain.errors import LedgerError
    from ledger.verify import CheckpointMemory, LogServer, exit_code, render_text, report_json

    options = _options(vkey, witness, min_witnesses, media, trust_root, workers, load_pin_file(trust), tsa_cert)
    try:
        log_server = None if server is None else LogServer(server)
    except MalformedInputError as exc:
        fail(exc.message, 2, error=exc.code)
    proofs = None if log_server is None else log_server.proofs_for
    if tiles is not None:
        if log_server is not None:
            fail("--tiles and --server both give consistency proofs: give one of them", 2, error="BAD_ARGUMENT")
        proofs, tiles_fetch = _tiles_proofs(tiles)
        options = replace(options, tiles=tiles_fetch, tiles_source=tiles)
    options = replace(options, memory=CheckpointMemory.default(), consistency=proofs)
    try:
        result = _verified(bundle, options, as_json)
        compared = None
        if previous is not None:
            from ledger.verify import compare_previous

            old = _verified(previous, replace(options, memory=None), as_json)
            compared = compare_previous(result, bundle, old, previous, proofs)
    except LedgerError as exc:
        fail(exc.message, 3 if exc.code in ("SERVER_UNREACHABLE", "BAD_RESPONSE") else 2, error=exc.code)
    if html is not None:
        from ledger.verify import render_html

        try:
            html.write_text(render_html(result, allow_unpinned=allow_unpinned), "utf-8")
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror or exc}", 2, error="CANNOT_WRITE")
    if as_json:
        doc = report_json(result, allow_unpinned=allow_unpinned)
        if compared is not None:
            doc["previous"] = compared.to_json()
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(result, allow_unpinned=allow_unpinned))
        if compared is not None:
            sys.stdout.write("\n" + compared.render_text())
    sys.stdout.flush()
    raise typer.Exit(1 if compared is not None and compared.failed else exit_code(result, allow_unpinned))


def _tiles_proofs(location: str) -> tuple[Any, Any]:
    """(consistency-proof source by origin, fetch) for ``--tiles``: proofs computed from the tiles of the
    tree their checkpoint states (every proof is verified against signed roots before it counts)."""
    from domain.errors import LedgerError
    from ledger.log import note
    from ledger.verify import tiles_proofs, tiles_source

    try:
        fetch, _ = tiles_source(location)
        size = note.parse_checkpoint_body(note.open_note(fetch("checkpoint"))[0]).size
    except LedgerError as exc:
        fail(f"--tiles {location}: {exc.message}", 3 if exc.code in ("SERVER_UNREACHABLE", "BAD_RESPONSE") else 2,
             error=exc.code)
    return (lambda _origin: tiles_proofs(fetch, size)), fetch


def _verified(bundle: Path, options: Any, as_json: bool) -> Any:
    """verify_bundle with a progress bar; exit 2 when the bundle itself is unusable."""
    from ledger.cli.progress import progress_bar, wanted
    from ledger.verify import BundleUnusable, verify_bundle

    try:
        with progress_bar("verify", wanted(as_json)) as report:
            return verify_bundle(bundle, options, report)
    except BundleUnusable as exc:
        fail(f"unusable bundle: {exc.message}", 2, error=exc.code)
    except OSError as exc:
        fail(f"cannot read {bundle}: {exc.strerror or exc}", 2, error="UNUSABLE_INPUT")
