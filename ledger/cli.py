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
from typing import Annotated, Any, TypeVar

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


def fail(message: str, code: int = 1) -> None:
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
    from ledger.canonical import parse_strict

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


@app.command()
@cli_errors
def init(
    origin: Annotated[
        str, typer.Option(help="log origin and key name, e.g. cambridgema.gov/evidence-ledger")
    ],
    data_dir: DataDir = None,
) -> None:
    """Create a data dir: trust-root admin key, log key, service key, sealing key, tables."""
    from ledger.bootstrap import init_data_dir
    from ledger.store import utc_now

    settings = settings_for(data_dir)
    result = init_data_dir(settings.data_dir, origin, settings, now=utc_now())
    typer.echo(f"initialised {result.data_dir} for origin {result.origin}")
    typer.echo(f"trust-root admin key id: {result.admin_key_id}")
    typer.echo(f"log verifier key: {result.log_verifier_key}")


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
    from ledger.keys import generate_key_pair, key_id

    if out.exists():
        fail(f"{out} exists; refusing to overwrite a key", 2)
    key = generate_key_pair(out)
    typer.echo(f"key {name}: id {key_id(key)}; private {out} (0600), public {out}.pub")


@keys_app.command("register")
@cli_errors
def keys_register(
    public_key: Annotated[Path, typer.Option("--public-key", help="PEM public key file (FILE.pub)")],
    actor: Annotated[str, typer.Option(help="who holds the key")],
    role: Annotated[
        str, typer.Option(help="investigator | supervisor | auditor | prosecutor | admin | service")
    ],
    authority: Annotated[str | None, typer.Option(help="prosecutors: the authority they act for")] = None,
    admin_key: Annotated[
        Path | None, typer.Option("--admin-key", help="admin private key (default: trust root)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Register a public key in the key registry (a signed KeyRegistered event)."""
    from ledger.bootstrap import register_key
    from ledger.keys import load_public_key, raw_public_key
    from ledger.settings import key_path

    with open_ledger(data_dir) as ledger:
        public = raw_public_key(load_public_key(public_key))
        receipt = register_key(
            ledger,
            admin_key or key_path(ledger.data_dir, "admin"),
            public,
            actor=actor,
            role=role,
            authority=authority,
        )
        print_json(receipt.to_json())


@keys_app.command("revoke")
@cli_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="id of the key to revoke")],
    reason: Annotated[str, typer.Option(help="why")],
    compromised_since: Annotated[
        str | None, typer.Option(help="RFC 3339 time the key may have leaked")
    ] = None,
    admin_key: Annotated[Path | None, typer.Option("--admin-key")] = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key (a signed KeyRevoked event)."""
    from ledger.bootstrap import revoke_key
    from ledger.settings import key_path

    with open_ledger(data_dir) as ledger:
        receipt = revoke_key(
            ledger,
            admin_key or key_path(ledger.data_dir, "admin"),
            key_id,
            reason=reason,
            compromised_since=compromised_since,
        )
        print_json(receipt.to_json())


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
    from ledger.keys import load_private_key

    body_data = read_json_arg(body, "body")
    if not isinstance(body_data, dict):
        fail("body must be a JSON object", 2)
    signer = load_private_key(key)
    if server is not None:
        import importlib

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        client = importlib.import_module("api.client")
        print_json(client.append_remote(server, token, _case_uuid(case_id), event_type, body_data, signer))
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
        from ledger.render import render_case

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

    from ledger.projection import rebuild

    with open_ledger(data_dir) as ledger, Progress(transient=True) as progress:
        task = progress.add_task("replaying", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        applied = rebuild(ledger.db, ledger.appender, from_zero=not resume, progress=report)
    typer.echo(f"replayed {applied} entries")


def register_commands() -> None:
    """Attach the command groups that live in other modules (imported for their side effect)."""
    import importlib

    for module in ("ledger.cli_log", "ledger.cli_witness", "ledger.cli_verify", "ledger.cli_trust", "ledger.cli_bundle", "ledger.cli_audit", "api.cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real missing dependency inside the module, not an absent module
                raise


def main() -> None:
    register_commands()
    app()


if __name__ == "__main__":  # `python -m ledger.cli`: run the one shared app, not this module's copy
    from ledger.cli import main as shared_main

    shared_main()
