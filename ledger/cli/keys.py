"""`evidence-ledger keys …`: key pairs and the key registry (registry changes signed where the admin key is)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import LedgerError, MalformedInputError
from ledger.cli.app import (
    DataDir,
    JsonOption,
    emit,
    keys_app,
    open_ledger,
    print_json,
    read_json_arg,
    settings_for,
)
from ledger.cli.errors import cli_errors, fail
from ledger.cli.remembered import check_log


@keys_app.command("new")
@cli_errors
def keys_new(
    name: Annotated[str, typer.Option(help="a label for the key holder")],
    out: Annotated[
        Path, typer.Option(help="private key file (PEM PKCS#8, mode 0600); FILE.pub gets the public key")
    ],
    as_json: JsonOption = False,
) -> None:
    """Create an Ed25519 key pair."""
    from ledger.envelope.keys import generate_key_pair, key_id

    if out.exists():
        fail(f"{out} exists; refusing to overwrite a key (give another --out)", 2, error="FILE_EXISTS")
    key = generate_key_pair(out)
    emit({"name": name, "key_id": key_id(key), "private_key": str(out), "public_key": f"{out}.pub"}, as_json,
         f"key {name}: id {key_id(key)}; private {out} (0600), public {out}.pub")


AdminKey = Annotated[
    Path | None,
    typer.Option(
        "--admin-key",
        help="admin private key file (kept off the server; the data dir's own key only in demo mode)",
    ),
]
Server = Annotated[str | None, typer.Option(help="send it to a running server at this URL (admin token)")]
Token = Annotated[str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")]
HeadFile = Annotated[
    Path | None,
    typer.Option("--head", help="registry head from `keys head` (offline signing; needs --out)"),
]
OutFile = Annotated[
    Path | None, typer.Option("--out", help="write the signed envelope here instead of appending it")
]


def _admin_key(admin_key: Path | None, data_dir: Path | None) -> Any:
    from ledger.envelope.keys import load_private_key
    from ledger.settings import key_path

    if admin_key is not None:
        return load_private_key(admin_key)
    demo = key_path(settings_for(data_dir).data_dir, "admin")
    if not demo.exists():
        raise MalformedInputError(
            "the admin key is not on this server: pass --admin-key PATH (see docs/keys.md)", code="BAD_ARGUMENT"
        )
    return load_private_key(demo)


def _registry_change(
    event_type: str,
    body: Callable[[Any], dict[str, Any]],
    *,
    admin_key: Path | None,
    server: str | None,
    token: str | None,
    head: Path | None,
    out: Path | None,
    data_dir: Path | None,
    as_json: bool = False,
) -> None:
    """Sign a registry event with the admin key and append it locally, send it to a server, or
    (offline, with --head and --out) write it for `keys submit`."""
    from ledger.bootstrap import registry_envelope
    from ledger.client import RemoteLedger
    from ledger.envelope.dsse import REGISTRY_CASE_ID
    from ledger.store import utc_now

    admin = _admin_key(admin_key, data_dir)
    if (head is None) != (out is None):
        fail("--head and --out go together (offline signing)", 2)
    if head is not None and out is not None:
        position = read_json_arg(f"@{head}", "head")
        try:
            origin, version, prev = str(position["origin"]), int(position["version"]), position["head_sha256"]
        except (KeyError, TypeError, ValueError):
            fail("--head: expected the JSON that `evidence-ledger keys head` prints", 2)
        raw = registry_envelope(
            admin, origin=origin, version=version, head=prev, event_type=event_type, body=body(utc_now()),
            now=utc_now(),
        )
        _write_new(out, raw + b"\n")
        emit({"event_type": event_type, "seq": version + 1, "out": str(out)}, as_json,
             f"signed {event_type} for registry position {version + 1}: {out}")
        return
    if server is not None:
        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        with RemoteLedger(server, token) as remote:
            remote.check(check_log)
            _receipt(remote.append(REGISTRY_CASE_ID, event_type, body(remote.clock()), admin), event_type, as_json)
        return
    with open_ledger(data_dir) as ledger:
        receipt = ledger.sign_and_append(admin, REGISTRY_CASE_ID, event_type, body(ledger.clock())).to_json()
    _receipt(receipt, event_type, as_json)


def _receipt(receipt: dict[str, Any], event_type: str, as_json: bool) -> None:
    emit(receipt, as_json, f"{event_type} appended: registry position {receipt.get('seq')},"
         f" leaf {receipt.get('leaf_index')}, event {receipt.get('event_id')}")


def _write_new(path: Path, data: bytes) -> None:
    try:
        with open(path, "xb") as handle:
            handle.write(data)
    except FileExistsError:
        fail(f"{path} exists; refusing to overwrite it", 2, error="FILE_EXISTS")


@keys_app.command("register")
@cli_errors
def keys_register(
    public_key: Annotated[Path, typer.Option("--public-key", help="PEM public key file (FILE.pub)")],
    actor: Annotated[str, typer.Option(help="who holds the key")],
    role: Annotated[
        str, typer.Option(help="investigator | supervisor | auditor | prosecutor | admin | service")
    ],
    authority: Annotated[str | None, typer.Option(help="prosecutors: the authority they act for")] = None,
    admin_key: AdminKey = None,
    server: Server = None,
    token: Token = None,
    head: HeadFile = None,
    out: OutFile = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Register a public key in the key registry (a KeyRegistered event signed by an admin key)."""
    from ledger.bootstrap import registry_body
    from ledger.envelope.keys import load_public_key, raw_public_key

    public = raw_public_key(load_public_key(public_key))
    _registry_change(
        "KeyRegistered",
        lambda now: registry_body(public, actor=actor, role=role, authority=authority, valid_from=now),
        admin_key=admin_key, server=server, token=token, head=head, out=out, data_dir=data_dir, as_json=as_json,
    )


@keys_app.command("revoke")
@cli_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="id of the key to revoke")],
    reason: Annotated[str, typer.Option(help="why")],
    compromised_since: Annotated[
        str | None, typer.Option(help="RFC 3339 time the key may have leaked")
    ] = None,
    admin_key: AdminKey = None,
    server: Server = None,
    token: Token = None,
    head: HeadFile = None,
    out: OutFile = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key (a KeyRevoked event signed by an admin key)."""
    body: dict[str, Any] = {"key_id": key_id, "reason": reason}
    if compromised_since is not None:
        body["compromised_since"] = compromised_since
    _registry_change(
        "KeyRevoked", lambda _now: body,
        admin_key=admin_key, server=server, token=token, head=head, out=out, data_dir=data_dir, as_json=as_json,
    )


@keys_app.command("head")
@cli_errors
def keys_head(data_dir: DataDir = None) -> None:
    """The registry's position (origin, version, head_sha256) as JSON: the file an offline admin signs
    against (`keys register --head FILE`); always JSON, since it is that file."""
    from ledger.envelope.dsse import REGISTRY_CASE_ID

    with open_ledger(data_dir) as ledger:
        version, head = ledger.case_head(REGISTRY_CASE_ID)
        print_json({"origin": ledger.origin, "version": version, "head_sha256": head})


@keys_app.command("genesis")
@cli_errors
def keys_genesis(
    admin_key: Annotated[Path, typer.Option("--admin-key", help="the trust-root admin private key")],
    request: Annotated[Path, typer.Option(help="genesis-request.json written by `init --admin-public-key`")],
    out: Annotated[Path, typer.Option(help="where to write the two signed envelopes (JSON lines)")],
    as_json: JsonOption = False,
) -> None:
    """Offline: sign the registry's genesis (the admin's own registration and the service key's)."""
    from ledger.bootstrap import genesis_from_request
    from ledger.envelope.keys import load_private_key
    from ledger.store import utc_now

    wanted = read_json_arg(f"@{request}", "request")
    if not isinstance(wanted, dict):
        fail("--request: expected the JSON object `init` wrote", 2)
    envelopes = genesis_from_request(load_private_key(admin_key), wanted, now=utc_now())
    _write_new(out, b"".join(raw + b"\n" for raw in envelopes))
    emit({"origin": wanted["origin"], "out": str(out), "envelopes": len(envelopes)}, as_json,
         f"signed the registry genesis for {wanted['origin']}: {out}; submit it with `keys submit`")


@keys_app.command("submit")
@cli_errors
def keys_submit(
    envelopes: Annotated[Path, typer.Argument(help="signed registry envelopes, one per line")],
    server: Server = None,
    token: Token = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Append registry envelopes signed elsewhere (`keys genesis`, or `keys register --out`)."""
    from ledger.client import RemoteLedger
    from ledger.envelope.dsse import REGISTRY_CASE_ID

    try:
        raws = [line for line in envelopes.read_bytes().splitlines() if line.strip()]
    except OSError as exc:
        raise MalformedInputError(f"cannot read {envelopes}: {exc.strerror}", code="BAD_ARGUMENT") from None
    if not raws:
        fail(f"{envelopes} holds no envelope", 2, error="UNUSABLE_INPUT")
    if server is not None:
        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        with RemoteLedger(server, token) as remote:
            remote.check(check_log)
            _receipts([remote.post_envelope(REGISTRY_CASE_ID, raw) for raw in raws], as_json)
        return
    receipts = []
    with open_ledger(data_dir) as ledger:
        for raw in raws:
            (outcome,) = ledger.append([raw])
            if isinstance(outcome, LedgerError):
                raise outcome
            receipts.append(outcome.to_json())
        ledger.checkpoint()
    _receipts(receipts, as_json)


def _receipts(receipts: list[dict[str, Any]], as_json: bool) -> None:
    emit(receipts, as_json, [
        f"appended registry position {r.get('seq')} (leaf {r.get('leaf_index')}, event {r.get('event_id')})"
        for r in receipts
    ])


@keys_app.command("list")
@cli_errors
def keys_list(as_json: JsonOption = False, data_dir: DataDir = None) -> None:
    """List registered keys (no key material beyond public keys); --json: the registry document."""
    with open_ledger(data_dir) as ledger:
        state = ledger.registry_state()
    data = {} if state is None else state.to_json()
    emit(data, as_json, _registry_lines(data))


def _registry_lines(registry: dict[str, Any]) -> list[str]:
    if not registry:
        return ["the key registry is empty (its genesis comes first: docs/keys.md)"]
    lines = [f"trust root {registry.get('root_key_id')}; registry version {registry.get('version')}"]
    for key in registry.get("keys", []):
        status = "revoked" if key.get("revoked") else "active"
        authority = f" for {key['authority']}" if key.get("authority") else ""
        lines.append(f"{key.get('key_id')}  {key.get('role')}{authority}  {key.get('actor')}  ({status})")
    return lines


