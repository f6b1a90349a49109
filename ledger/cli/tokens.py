"""`evidence-ledger tokens …`: bearer tokens for the HTTP API (stored hashed and sealed, ledger/tokens.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli.app import DataDir, JsonOption, app, emit, settings_for
from ledger.cli.errors import cli_errors

tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the HTTP API (stored hashed).")
app.add_typer(tokens_app, name="tokens")


@contextmanager
def _token_store(data_dir: Path | None) -> Iterator[Any]:
    from datetime import timedelta

    from ledger.store import Ledger
    from ledger.tokens import TokenPolicy, TokenStore

    settings = settings_for(data_dir)
    with Ledger(settings) as ledger:
        yield TokenStore(
            ledger.db, ledger.mac, authorities=tuple(settings.authorities), registry=ledger.registry_state,
            max_lifetime=timedelta(days=TokenPolicy().token_max_days),
        )


@tokens_app.command("issue")
@cli_errors
def tokens_issue(
    actor: Annotated[str, typer.Option(help="who the token is for; must equal the actor of their signing key")],
    role: Annotated[str, typer.Option(help="investigator | supervisor | auditor | prosecutor | admin")],
    authority: Annotated[str | None, typer.Option(help="prosecutors: the authority they act for")] = None,
    expires_in: Annotated[str, typer.Option("--expires-in", help="lifetime, e.g. 30d, 12h, 90m")] = "30d",
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Issue a token; it is printed once, alone on the last line (--json: the "token" field), and only its
    SHA-256 is stored. Refused (exit 1) unless the actor holds an active registered key of the role."""
    from ledger.store import utc_now
    from ledger.tokens import parse_duration

    lifetime = parse_duration(expires_in)
    with _token_store(data_dir) as store:
        issued = store.issue(actor=actor, role=role, authority=authority, expires_in=lifetime, now=utc_now())
    record = issued.record
    emit({**record.to_json(utc_now()), "token": issued.token}, as_json, [
        f"token id {record.token_id} for {record.actor} ({record.role}), expires {record.expires_at}",
        "store it now; it cannot be shown again:",
        issued.token,
    ])


@tokens_app.command("revoke")
@cli_errors
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="the token id shown by `tokens issue` / `tokens list`")],
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Revoke a token (effective immediately)."""
    from ledger.store import utc_now

    with _token_store(data_dir) as store:
        record = store.revoke(token_id, now=utc_now())
    emit(record.to_json(utc_now()), as_json,
         f"revoked token {record.token_id} ({record.actor}) at {record.revoked_at}")


@tokens_app.command("list")
@cli_errors
def tokens_list(as_json: JsonOption = False, data_dir: DataDir = None) -> None:
    """List tokens (ids, actors, roles, expiry, status; never the tokens or their hashes)."""
    from ledger.store import utc_now

    with _token_store(data_dir) as store:
        records = store.list()
    now = utc_now()
    data = [r.to_json(now) for r in records]
    emit(data, as_json, [
        "  ".join(str(d.get(k, "")) for k in ("token_id", "status", "role", "actor", "expires_at")) for d in data
    ] or ["no tokens"])

