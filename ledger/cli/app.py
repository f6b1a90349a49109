"""The `evidence-ledger` command line.

Every command has ``--help``; errors are one line on stderr and a non-zero exit (1 refused or
failed, 2 unusable input or arguments). Heavy modules are imported inside the commands so that the
offline commands (``verify``, ``log verify-*``) start without FastAPI or any database driver.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from domain.errors import LedgerError, MalformedInputError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold personal data or key material
    help="Signed, append-only, verifiable evidence ledger.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys and the key registry.")
case_app = typer.Typer(no_args_is_help=True, help="Read cases.")
db_app = typer.Typer(no_args_is_help=True, help="Database administration.")
app.add_typer(keys_app, name="keys")
app.add_typer(case_app, name="case")
app.add_typer(db_app, name="db")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="EVIDENCE_LEDGER_DATA_DIR", help="data directory created by `init`"),
]

USAGE_CODES = {
    "MALFORMED_JSON",
    "BAD_ARGUMENT",
    "BAD_KEY",
    "BAD_ORIGIN",
    "CONFIGURATION",
    "UNUSABLE_INPUT",
    "UNSAFE_DURABILITY",
}


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def cli_errors(func: F) -> F:
    """Turn project errors into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LedgerError as exc:
            refs = " ".join(f"{k}={v}" for k, v in exc.refs.items())
            usage = exc.code in USAGE_CODES or (
                isinstance(exc, MalformedInputError) and exc.code == "BAD_ARGUMENT"
            )
            fail(f"{exc.code}: {exc.message}" + (f" ({refs})" if refs else ""), 2 if usage else 1)
        except OSError as exc:
            fail(f"{type(exc).__name__}: {exc.strerror or exc}", 2)

    return functools.update_wrapper(wrapper, func)  # type: ignore[return-value]


def settings_for(data_dir: Path | None) -> Any:
    from ledger.settings import Settings

    return Settings() if data_dir is None else Settings(data_dir=data_dir)


def open_ledger(data_dir: Path | None) -> Any:
    from ledger.store import Ledger

    return Ledger(settings_for(data_dir))


def read_json_arg(value: str, what: str) -> Any:
    """A JSON argument given inline or as @FILE; parsed strictly."""
    from ledger.envelope.canonical import parse_strict

    if value.startswith("@"):
        try:
            raw = Path(value[1:]).read_bytes()
        except OSError as exc:
            raise MalformedInputError(
                f"cannot read {what} file: {exc.strerror}", code="BAD_ARGUMENT"
            ) from None
    else:
        raw = value.encode("utf-8")
    try:
        return parse_strict(raw)
    except MalformedInputError as exc:
        raise MalformedInputError(f"{what}: {exc.message}", code="BAD_ARGUMENT") from None


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


# -- init / db -------------------------------------------------------------------------------------


DEMO_WARNING = (
    "WARNING: DEMO MODE. The trust-root admin private key is stored in {path}: whoever holds this "
    "server can register keys. For production, generate the admin key offline (`evidence-ledger keys "
    "new`) and run `init --admin-public-key FILE` (docs/keys.md)."
)


@app.command()
@cli_errors
def init(
    origin: Annotated[
        str, typer.Option(help="log origin and key name, e.g. cambridgema.gov/evidence-ledger")
    ],
    admin_public_key: Annotated[
        Path | None,
        typer.Option(
            "--admin-public-key",
            help="the trust-root admin PUBLIC key (FILE.pub from `keys new` on an offline machine); "
            "without it the admin private key is generated into the data dir (demo mode)",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a data dir: log key, service key, state key, sealing key, tables (and, in demo mode only,
    the trust-root admin key with the registry's genesis)."""
    from ledger.bootstrap import GENESIS_REQUEST, init_data_dir
    from ledger.envelope.keys import load_public_key, raw_public_key
    from ledger.settings import key_path
    from ledger.store import utc_now

    settings = settings_for(data_dir)
    admin_public = None if admin_public_key is None else raw_public_key(load_public_key(admin_public_key))
    result = init_data_dir(settings.data_dir, origin, settings, now=utc_now(), admin_public=admin_public)
    typer.echo(f"initialised {result.data_dir} for origin {result.origin}")
    typer.echo(f"trust-root admin key id: {result.admin_key_id}")
    typer.echo(f"log verifier key: {result.log_verifier_key}")
    if admin_public is None:
        typer.echo(DEMO_WARNING.format(path=key_path(result.data_dir, "admin")), err=True)
        return
    request = result.data_dir / GENESIS_REQUEST
    typer.echo("the key registry is empty until the admin signs its genesis offline:")
    typer.echo(f"  1. copy {request} to the offline machine that holds the admin key")
    typer.echo(f"  2. there: evidence-ledger keys genesis --admin-key ADMIN.pem --request {GENESIS_REQUEST} --out genesis.jsonl")
    typer.echo("  3. here:  evidence-ledger keys submit genesis.jsonl")


@db_app.command("migrate")
@cli_errors
def db_migrate(data_dir: DataDir = None) -> None:
    """Create or update the tables (safe to re-run; run once before starting workers)."""
    from ledger.store import Ledger

    with Ledger(settings_for(data_dir), create_tables=True) as ledger:
        typer.echo(f"schema ready on {ledger.target.describe()}")


# -- keys ------------------------------------------------------------------------------------------


@keys_app.command("new")
@cli_errors
def keys_new(
    name: Annotated[str, typer.Option(help="a label for the key holder")],
    out: Annotated[
        Path, typer.Option(help="private key file (PEM PKCS#8, mode 0600); FILE.pub gets the public key")
    ],
) -> None:
    """Create an Ed25519 key pair."""
    from ledger.envelope.keys import generate_key_pair, key_id

    if out.exists():
        fail(f"{out} exists; refusing to overwrite a key", 2)
    key = generate_key_pair(out)
    typer.echo(f"key {name}: id {key_id(key)}; private {out} (0600), public {out}.pub")


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
        typer.echo(f"signed {event_type} for registry position {version + 1}: {out}")
        return
    if server is not None:
        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        with RemoteLedger(server, token) as remote:
            print_json(remote.append(REGISTRY_CASE_ID, event_type, body(remote.clock()), admin))
        return
    with open_ledger(data_dir) as ledger:
        print_json(ledger.sign_and_append(admin, REGISTRY_CASE_ID, event_type, body(ledger.clock())).to_json())


def _write_new(path: Path, data: bytes) -> None:
    try:
        with open(path, "xb") as handle:
            handle.write(data)
    except FileExistsError:
        fail(f"{path} exists; refusing to overwrite it", 2)


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
    data_dir: DataDir = None,
) -> None:
    """Register a public key in the key registry (a KeyRegistered event signed by an admin key)."""
    from ledger.bootstrap import registry_body
    from ledger.envelope.keys import load_public_key, raw_public_key

    public = raw_public_key(load_public_key(public_key))
    _registry_change(
        "KeyRegistered",
        lambda now: registry_body(public, actor=actor, role=role, authority=authority, valid_from=now),
        admin_key=admin_key, server=server, token=token, head=head, out=out, data_dir=data_dir,
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
    data_dir: DataDir = None,
) -> None:
    """Revoke a key (a KeyRevoked event signed by an admin key)."""
    body: dict[str, Any] = {"key_id": key_id, "reason": reason}
    if compromised_since is not None:
        body["compromised_since"] = compromised_since
    _registry_change(
        "KeyRevoked", lambda _now: body,
        admin_key=admin_key, server=server, token=token, head=head, out=out, data_dir=data_dir,
    )


@keys_app.command("head")
@cli_errors
def keys_head(data_dir: DataDir = None) -> None:
    """The registry's position (origin, version, head_sha256): what an offline admin signs against."""
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
    typer.echo(f"signed the registry genesis for {wanted['origin']}: {out}; submit it with `keys submit`")


@keys_app.command("submit")
@cli_errors
def keys_submit(
    envelopes: Annotated[Path, typer.Argument(help="signed registry envelopes, one per line")],
    server: Server = None,
    token: Token = None,
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
        fail(f"{envelopes} holds no envelope", 2)
    if server is not None:
        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        with RemoteLedger(server, token) as remote:
            print_json([remote.post_envelope(REGISTRY_CASE_ID, raw) for raw in raws])
        return
    receipts = []
    with open_ledger(data_dir) as ledger:
        for raw in raws:
            (outcome,) = ledger.append([raw])
            if isinstance(outcome, LedgerError):
                raise outcome
            receipts.append(outcome.to_json())
        ledger.checkpoint()
    print_json(receipts)


@keys_app.command("list")
@cli_errors
def keys_list(data_dir: DataDir = None) -> None:
    """List registered keys (no key material beyond public keys)."""
    with open_ledger(data_dir) as ledger:
        state = ledger.registry_state()
        print_json([] if state is None else state.to_json())


# -- append / seal ---------------------------------------------------------------------------------


@app.command()
@cli_errors
def append(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="event type, e.g. CaseOpened")],
    key: Annotated[Path, typer.Option(help="signer's private key file")],
    body: Annotated[str, typer.Option(help="event body as JSON or @FILE")],
    server: Annotated[str | None, typer.Option(help="append through a running server at this URL")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign an event for the next position of a case and append it; prints the receipt."""
    from ledger.envelope.keys import load_private_key

    body_data = read_json_arg(body, "body")
    if not isinstance(body_data, dict):
        fail("body must be a JSON object", 2)
    signer = load_private_key(key)
    if server is not None:
        from ledger.client import append_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        print_json(append_remote(server, token, _case_uuid(case_id), event_type, body_data, signer))
        return
    with open_ledger(data_dir) as ledger:
        receipt = ledger.sign_and_append(signer, _case_uuid(case_id), event_type, body_data)
        print_json(receipt.to_json())


def _case_uuid(value: str) -> str:
    import uuid

    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise MalformedInputError("CASE_ID must be a UUID", code="BAD_ARGUMENT") from None
    return str(parsed)


@app.command()
@cli_errors
def seal(
    data: Annotated[str, typer.Option(help="personal data as JSON or @FILE")],
    data_dir: DataDir = None,
) -> None:
    """Seal personal data outside the log; prints {"sealed_ref", "commitment"} to put in an event."""
    value = read_json_arg(data, "data")
    with open_ledger(data_dir) as ledger:
        ledger.require_writable()
        ref = ledger.sealed_store().seal(value, now=ledger.clock())
        print_json(ref.to_json())


# -- cases -----------------------------------------------------------------------------------------


@case_app.command("show")
@cli_errors
def case_show(
    case_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="the case as the ledger knew it at this RFC 3339 time")
    ] = None,
    at_index: Annotated[
        int | None, typer.Option("--at-index", help="the case as the ledger knew it after this leaf index")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Show a case from its projection (or, with --as-of/--at-index, replayed as it was then)."""
    with open_ledger(data_dir) as ledger:
        if as_of is None and at_index is None:
            view = ledger.case_view(_case_uuid(case_id))
        else:
            view = ledger.case_at(_case_uuid(case_id), as_of=as_of, at_index=at_index)
    if as_json:
        print_json(view)
    else:
        from ledger.cli.render import render_case

        render_case(view)


@case_app.command("events")
@cli_errors
def case_events(case_id: str, data_dir: DataDir = None) -> None:
    """The stored envelopes of a case, one per line, exactly as stored."""
    with open_ledger(data_dir) as ledger:
        envelopes = ledger.case_envelopes(_case_uuid(case_id))
    if not envelopes:
        fail("CASE_NOT_FOUND: no such case", 1)
    out = sys.stdout.buffer
    for raw in envelopes:
        out.write(raw + b"\n")
    out.flush()


@app.command()
@cli_errors
def replay(
    resume: Annotated[bool, typer.Option("--resume", help="continue from the tracked position")] = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild every projection from the stored events (from zero unless --resume)."""
    from rich.progress import Progress

    from ledger.replay import rebuild

    with open_ledger(data_dir) as ledger, Progress(transient=True) as progress:
        task = progress.add_task("replaying", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        applied = rebuild(ledger.db, ledger.appender, from_zero=not resume, progress=report)
    typer.echo(f"replayed {applied} entries")


def register_commands() -> None:
    """Attach the command groups that live in other modules (imported for their side effect)."""
    import importlib

    for module in ("ledger.cli.log", "ledger.cli.witness", "ledger.cli.verify", "ledger.cli.trust", "ledger.cli.bundle", "ledger.cli.audit", "ledger.cli.db", "api.cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real missing dependency inside the module, not an absent module
                raise


def main() -> None:
    register_commands()
    app()


if __name__ == "__main__":  # `python -m ledger.cli`: run the one shared app, not this module's copy
    from ledger.cli.app import main as shared_main

    shared_main()
