"""`evidence-ledger receipt check`: ask a server whether it kept the promise of a receipt.

The latest checkpoint's signature is checked with the pinned (or given) log key; if it covers the
receipt's index, the inclusion proof must lead from the receipt's leaf hash to its root
(``ledger.verify.receipt_check``); the pin file's witnesses for the origin must have cosigned that
checkpoint as the pin requires (WITNESS_POLICY). Exit 0 included or pending (within the promised delay), 1
BROKEN_PROMISE, BAD_RECEIPT or WITNESS_POLICY, 2 unusable input, 3 server unavailable, 4 UNPINNED. ``--stored``
checks every receipt kept in the client state directory for the server's origin.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.cli.args import read_file
from ledger.cli.errors import UNPINNED, check_errors, fail
from ledger.cli.log_checks import JsonFlag, VKey, _result
from ledger.cli.receipts import log_key_for, unpinned_message, verify
from ledger.cli.verify import TrustFile

receipt_app = typer.Typer(no_args_is_help=True, help="Check signed receipts (promises of inclusion).")
receipt_app.command("verify")(verify)

#: hidden: judge as of this RFC 3339 UTC time instead of now (tests)
NowOption = Annotated[str | None, typer.Option("--now", hidden=True, show_default=False)]


def remote(server: str) -> Any:
    """The client of ``server`` (a RemoteLedger, without a token: only public endpoints are read)."""
    from ledger.client import RemoteLedger

    return RemoteLedger(server)


def _remembered(conn: Any, key: Any) -> None:
    """The check every command that talks to a server makes first (``ledger.cli.remembered``): the
    server's log against the checkpoint this client remembers (ROLLBACK, EQUIVOCATION)."""
    from ledger.cli.remembered import check_log

    check_log(conn, key)


def _witness_policy(origin: str, trust: Path | None) -> tuple[tuple[Any, ...], int | None]:
    """The pin file's witnesses for ``origin`` and how many must have cosigned the log's checkpoint (a
    production pin's floor), as every other command that reads a checkpoint applies them."""
    from ledger.cli.verify import load_pin_file

    pins = load_pin_file(trust)
    pin = None if pins is None else pins.get(origin)
    if pin is None or not pin.witnesses:
        return (), None
    return tuple(pin.witnesses), pin.required_witnesses(None)


def _fetcher(conn: Any) -> Callable[[str], bytes]:
    def fetch(path: str) -> bytes:
        content: bytes = conn.call("GET", path).content
        return content

    return fetch


def _now(now: str | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    from ledger.envelope.canonical import parse_time

    try:
        return parse_time(now, field="--now")
    except LedgerError as exc:
        raise MalformedInputError(exc.message, code="BAD_ARGUMENT") from None


@receipt_app.command("check")
@check_errors
def check(
    receipt_file: Annotated[
        Path | None, typer.Argument(metavar="[RECEIPT]", help="signed receipt file (omit with --stored)")
    ] = None,
    server: Annotated[str | None, typer.Option(help="the log's server, e.g. http://127.0.0.1:8000")] = None,
    stored: Annotated[
        bool, typer.Option("--stored", help="check every receipt kept in the client state dir for the server's origin")
    ] = False,
    vkey: VKey = None,
    trust: TrustFile = None,
    as_json: JsonFlag = False,
    now: NowOption = None,
) -> None:
    """Check that the server's log holds a receipted entry (included), or may still (pending)."""
    from ledger.log import receipt as receipts
    from ledger.verify import check_receipt

    if server is None:
        fail("receipt check needs --server URL (the log that issued the receipt)", 2)
    if stored == (receipt_file is not None):
        fail("give a RECEIPT file or --stored (every kept receipt), not both", 2)
    moment = _now(now)
    with remote(server) as conn:
        fetch = _fetcher(conn.transport)
        given = None if vkey is None else log_key_for("", vkey, trust).key
        if given is not None:  # the log is checked before anything else is read
            _remembered(conn, given)
        if stored:
            _check_stored(conn, fetch, vkey, trust, as_json, moment, checked=given is not None)
            return
        assert receipt_file is not None
        raw = read_file(receipt_file, "receipt")
        parsed = receipts.parse(raw)
        anchor = log_key_for(parsed.origin, vkey, trust)
        if anchor.key is None:
            message = unpinned_message(parsed.origin, "the receipt was not checked against the log", anchor.where)
            _result(as_json, {**parsed.to_json(), "verdict": "unpinned", "message": message,
                              "exit_code": UNPINNED}, message)
            raise typer.Exit(UNPINNED)
        if given is None:
            _remembered(conn, anchor.key)
        status = check_receipt(raw, anchor.key, fetch, moment, *_witness_policy(parsed.origin, trust))
    _result(as_json, {**status.to_json(), "exit_code": 0}, f"{status.verdict}: {status.message}{anchor.suffix}")


def _check_stored(conn: Any, fetch: Callable[[str], bytes], vkey: str | None, trust: Path | None, as_json: bool,
                  moment: datetime, *, checked: bool) -> None:
    from ledger.log import receipt as receipts
    from ledger.verify import log_checkpoint, receipt_status, stored_receipts

    origin = fetch("/v1/log/checkpoint").split(b"\n", 1)[0].decode("utf-8", "replace")
    anchor = log_key_for(origin, vkey, trust)
    if anchor.key is None:
        message = unpinned_message(origin, "the kept receipts were not checked", anchor.where)
        _result(as_json, {"origin": origin, "verdict": "unpinned", "message": message, "exit_code": UNPINNED},
                message)
        raise typer.Exit(UNPINNED)
    if not checked:
        _remembered(conn, anchor.key)
    checkpoint = log_checkpoint(fetch, anchor.key, origin, *_witness_policy(origin, trust))
    rows: list[dict[str, Any]] = []
    failures: list[LedgerError] = []
    for kept in stored_receipts(origin):
        try:
            receipt = receipts.verify(kept.data, anchor.key, origin=origin)
            if receipt.index != kept.index:
                raise VerificationError(f"the receipt kept as {kept.path.name} is for leaf {receipt.index}",
                                        code="BAD_RECEIPT")
            rows.append(receipt_status(receipt, checkpoint, fetch, moment).to_json())
        except (MalformedInputError, VerificationError) as exc:
            failures.append(exc)
            rows.append({"leaf_index": kept.index, "verdict": exc.code.lower(), "message": exc.message,
                         "path": str(kept.path)})
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in sorted({r["verdict"] for r in rows})}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items()) or "no receipts kept"
    lines = [f"leaf {r['leaf_index']}: {r['verdict']}: {r['message']}" for r in rows]
    lines.append(f"{origin}: {summary}{anchor.suffix}")
    _result(as_json, {"origin": origin, "receipts": rows, "counts": counts, "exit_code": 1 if failures else 0},
            "\n".join(lines))
    if failures:
        first = failures[0]
        fail(f"{len(failures)} kept receipt(s) failed; the first: {first.message}", 1, error=first.code)
