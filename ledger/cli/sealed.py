"""`evidence-ledger sealed request | approve | disclose | shred` and `retention run` (docs/privacy.md).

Each signs its event with the caller's own key (``--key``), locally or through a running server
(``--server``/``--token``). ``disclose`` writes the unsealed record to ``--out FILE`` (created
0600, never overwritten) or to stdout, and nowhere else; every other output is ids and counts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import MalformedInputError, NotFoundError
from ledger.cli.app import (
    DataDir,
    JsonOption,
    KeystoreDir,
    emit,
    open_ledger,
    retention_app,
    sealed_app,
    settings_for,
)
from ledger.cli.cases import _case_uuid
from ledger.cli.errors import cli_errors, fail
from ledger.cli.remembered import check_log

Key = Annotated[Path, typer.Option(help="your private key file (the event is signed with it)")]
Server = Annotated[str | None, typer.Option(help="go through a running server at this URL")]
Token = Annotated[str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")]
RequestId = Annotated[str, typer.Option("--request-id", help="the disclosure request's id")]


def _append(
    case_id: str, event_type: str, body: dict[str, Any], key: Path, server: str | None, token: str | None,
    data_dir: Path | None, keystore_dir: Path | None, as_json: bool = False,
) -> None:
    from ledger.envelope.keys import load_private_key

    signer = load_private_key(key)
    if server is not None:
        from ledger.client import append_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        receipt = append_remote(server, token, _case_uuid(case_id), event_type, body, signer, guard=check_log)
        _receipt(receipt, event_type, as_json)
        return
    with open_ledger(data_dir, keystore_dir) as ledger:
        receipt = ledger.sign_and_append(signer, _case_uuid(case_id), event_type, body).to_json()
    _receipt(receipt, event_type, as_json)


def _receipt(receipt: dict[str, Any], event_type: str, as_json: bool, extra: str = "") -> None:
    emit(receipt, as_json, f"appended {event_type} as seq {receipt.get('seq')} of case {receipt.get('case_id')}:"
         f" leaf {receipt.get('leaf_index')}, event {receipt.get('event_id')}{extra}")


@sealed_app.command("request")
@cli_errors
def request(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    key: Key,
    request_id: RequestId,
    sealed_ref: Annotated[str, typer.Option("--sealed-ref", help="the sealed record of the case to disclose")],
    purpose: Annotated[str, typer.Option(help="why the record is needed")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="the law, order or process that allows it")],
    server: Server = None,
    token: Token = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    keystore_dir: KeystoreDir = None,
) -> None:
    """Ask for a sealed record to be disclosed (investigator, supervisor or counsel); prints the receipt."""
    body = {"request_id": request_id, "sealed_ref": sealed_ref, "purpose": purpose, "legal_basis": legal_basis}
    _append(case_id, "SealedDisclosureRequested", body, key, server, token, data_dir, keystore_dir, as_json)


@sealed_app.command("approve")
@cli_errors
def approve(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    key: Key,
    request_id: RequestId,
    server: Server = None,
    token: Token = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    keystore_dir: KeystoreDir = None,
) -> None:
    """Approve another person's disclosure request (supervisor or counsel); prints the receipt."""
    _append(case_id, "SealedDisclosureApproved", {"request_id": request_id}, key, server, token, data_dir,
            keystore_dir, as_json)


def _request_in(view: dict[str, Any], request_id: str) -> dict[str, Any]:
    for item in view.get("disclosures", []):
        if item.get("request_id") == request_id:
            return dict(item)
    raise NotFoundError("no disclosure request with this id in the case", code="UNKNOWN_DISCLOSURE_REQUEST")


def _write_out(out: Path | None, result: dict[str, Any]) -> None:
    text = json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise MalformedInputError(f"--out {out} exists; it is never overwritten", code="BAD_ARGUMENT") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


@sealed_app.command("disclose")
@cli_errors
def disclose(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    key: Key,
    request_id: RequestId,
    out: Annotated[
        Path | None, typer.Option(help="write the record here (created 0600, never overwritten); default stdout")
    ] = None,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    keystore_dir: KeystoreDir = None,
) -> None:
    """As the requester, once approved: sign the disclosure (naming every approver), append it and
    receive the record. The check and the record happen in one step; a refusal is recorded in the case."""
    from ledger.envelope.keys import load_private_key
    from ledger.envelope.signing import build_envelope

    signer = load_private_key(key)
    if out is not None and out.exists():
        fail(f"BAD_ARGUMENT: --out {out} exists; it is never overwritten", 2)
    cid = _case_uuid(case_id)
    if server is not None:
        from ledger.client import RemoteLedger

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        with RemoteLedger(server, token) as remote:
            remote.check(check_log)
            view = remote.transport.call("GET", f"/v1/cases/{cid}").json()
            wanted = _request_in(view, request_id)
            body = _body(wanted, request_id)
            raw = build_envelope(
                origin=remote.origin(), case_id=cid, event_type="SealedRecordDisclosed", body=body, key=signer,
                seq=int(view["version"]) + 1, prev=str(view["head_sha256"]), occurred_at=remote.clock(),
            )
            result = remote.transport.call(
                "POST", f"/v1/sealed/{wanted['sealed_ref']}/disclosure", content=raw,
                headers={"Content-Type": "application/json"},
            ).json()
        _write_out(out, result)
        return
    from ledger.evidence.disclosure import disclose as disclose_record

    with open_ledger(data_dir, keystore_dir) as ledger:
        wanted = _request_in(ledger.case_view(cid), request_id)
        raw = ledger.next_envelope(signer, cid, "SealedRecordDisclosed", _body(wanted, request_id))
        done = disclose_record(ledger, raw, sealed_ref=str(wanted["sealed_ref"]))
    _write_out(out, {"sealed_ref": wanted["sealed_ref"], "data": done.data, "commitment": done.commitment,
                     "receipt": done.receipt.to_json()})


def _body(request: dict[str, Any], request_id: str) -> dict[str, Any]:
    approvers = sorted({str(a["actor"]) for a in request.get("approvals", [])})
    if not approvers:  # an empty list is not a valid body: refuse here with the rule's own code
        from domain.errors import RuleViolation

        raise RuleViolation("the request has no approval by another person", code="DISCLOSURE_NOT_APPROVED",
                            request_id=request_id)
    return {"request_id": request_id, "sealed_ref": request["sealed_ref"], "approvers": approvers}


@sealed_app.command("shred")
@cli_errors
def shred(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    key: Key,
    sealed_ref: Annotated[str, typer.Option("--sealed-ref", help="the sealed record to destroy")],
    reason: Annotated[str, typer.Option(help="why (recorded in the signed event)")],
    server: Server = None,
    token: Token = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    keystore_dir: KeystoreDir = None,
) -> None:
    """Shred a sealed record (supervisor or counsel): the signed event first, then its key is destroyed."""
    if server is not None:
        _append(case_id, "SealedRecordShredded", {"sealed_ref": sealed_ref, "reason": reason}, key, server, token,
                data_dir, keystore_dir, as_json)
        return
    from ledger.envelope.keys import load_private_key
    from ledger.evidence.disclosure import shred as shred_record

    signer = load_private_key(key)
    with open_ledger(data_dir, keystore_dir) as ledger:
        result = shred_record(ledger, signer, _case_uuid(case_id), sealed_ref, reason)
    receipt = result.receipt.to_json()
    _receipt({**receipt, "key_destroyed": result.destroyed}, "SealedRecordShredded", as_json,
             "; its key is destroyed" if result.destroyed else "; its key was already destroyed")


@retention_app.command("run")
@cli_errors
def retention_run(
    after_days: Annotated[
        int | None, typer.Option("--after-days", min=0, help="shred cases closed longer ago (default: retention_days, 90)")
    ] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    keystore_dir: KeystoreDir = None,
) -> None:
    """Shred the sealed data of cases closed more than N days ago, unless held or with an unacknowledged
    referral; each shred is a service-signed event. Idempotent; prints ids and counts only."""
    from ledger.evidence.disclosure import run_retention
    from ledger.store import Ledger

    settings = settings_for(data_dir, keystore_dir)
    days = settings.retention_days if after_days is None else after_days
    with Ledger(settings) as ledger:
        ledger.require_writable()
        report = run_retention(ledger, after_days=days, now=ledger.clock())
    data = {**report.to_json(), "counts": {
        "shredded": len(report.shredded), "blocked": len(report.blocked), "finished": report.finished,
    }}
    emit(data, as_json, [
        f"retention: cases closed before {report.cutoff}: {len(report.shredded)} sealed record(s) shredded,"
        f" {len(report.blocked)} kept (held or referred), {report.finished} earlier shred(s) finished",
        *(f"  shredded {s['sealed_ref']} of case {s['case_id']}" for s in data["shredded"]),
        *(f"  kept {b['sealed_ref']} of case {b['case_id']}: {b['code']}" for b in data["blocked"]),
    ])
