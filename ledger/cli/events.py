"""`evidence-ledger events list | template | schema`: what each event type is, who may append it, and
its body — generated from the declarations in ``domain/events.py`` (``ledger.event_schema``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from domain.errors import MalformedInputError
from ledger.cli.app import app, print_json
from ledger.cli.errors import cli_errors

events_app = typer.Typer(no_args_is_help=True, help="Event types: who may append each, fillable bodies, JSON Schemas.")
app.add_typer(events_app, name="events")

AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
TypeName = Annotated[str, typer.Argument(metavar="TYPE", help="event type, e.g. FootageCaptured (see `events list`)")]


def type_name_arg(value: str, code: str = "BAD_ARGUMENT") -> str:
    """The registered type named ``value``; else ``unknown event type 'x'; did you mean X? (evidence-ledger
    events list)``, exit 2 — the name is shown only if it looks like one (letters and digits), as it may
    be anything typed."""
    from domain.events import EVENT_TYPES, closest_type

    if value in EVENT_TYPES:
        return value
    shown = repr(value) if value.isascii() and value.isalnum() and len(value) <= 64 else "(not a type name)"
    near = closest_type(value)
    hint = f"; did you mean {near}?" if near else ""
    raise MalformedInputError(
f"unknown event type {shown}{hint} (evidence-ledger events list)", code=code)



@events_app.command("list")
@cli_errors
def events_list(as_json: AsJson = False) -> None:
    """Every event type with the roles that may append it (from the type's own declaration).

    --json: {"items": [{"type", "version", "stream", "roles", "opens_case", "when_closed", "summary"}]}."""
    from ledger.event_schema import describe_types

    items = describe_types()
    if as_json:
        print_json({"items": items})
        return
    from rich.table import Table

    from ledger.cli.render import terminal

    table = Table("type", "who may append it", "notes", title="Event types (evidence-ledger events template TYPE)")
    for item in items:
        notes = []
        if item["opens_case"]:
            notes.append("opens a case (`case new`)")
        if item["stream"] == "registry":
            notes.append("key registry (`keys register` / `keys revoke`)")
        elif item["when_closed"]:
            notes.append("accepted on a closed case")
        table.add_row(item["type"], ", ".join(item["roles"]), "; ".join(notes))
    terminal().print(table)


@events_app.command("template")
@cli_errors
def events_template(type_name: TypeName, as_json: AsJson = False) -> None:
    """A fillable body of TYPE: every field with a placeholder that says what goes there.

    Save it, replace each <…>, delete the optional lines you do not need, and give it to
    `append … --body @FILE` (or `--body -` on standard input). The template goes to standard output;
    in text mode, which fields are required goes to standard error (so `> body.json` keeps only
    the JSON)."""
    from ledger import event_schema

    name = type_name_arg(type_name)
    typer.echo(json.dumps(event_schema.template(name), indent=2, ensure_ascii=False))
    if not as_json:
        required, optional = event_schema.required_fields(name)
        typer.echo(f"{name}: required: {', '.join(required)}", err=True)
        if optional:
            typer.echo(f"{name}: optional (may be left out or null): {', '.join(optional)}", err=True)
        nullable = [k for k, v in event_schema.body_schema(name)["properties"].items() if _nullable(v) and k in required]
        if nullable:
            typer.echo(f"{name}: required but may be null: {', '.join(nullable)}", err=True)
        typer.echo(f"schema: evidence-ledger events schema {name}", err=True)


def _nullable(schema: dict[str, Any]) -> bool:
    return any(part.get("type") == "null" for part in schema.get("anyOf", ()))


@events_app.command("schema")
@cli_errors
def events_schema(type_name: TypeName, as_json: AsJson = False) -> None:
    """The JSON Schema (2020-12) of TYPE's body (--json), or its fields as a table."""
    from ledger import event_schema

    name = type_name_arg(type_name)
    schema = event_schema.body_schema(name)
    if as_json:
        print_json(schema)
        return
    from rich.table import Table

    from ledger.cli.render import terminal

    table = Table("field", "required", "value", title=f"{schema['title']} (--json: the JSON Schema)")
    for field_name, part in schema["properties"].items():
        table.add_row(field_name, "yes" if field_name in schema["required"] else "optional", _describe(part))
    console = terminal()
    console.print(table)
    console.print("No other field is allowed.")
    if "$comment" in schema:
        console.print(schema["$comment"])


def _describe(schema: dict[str, Any]) -> str:
    """One readable line for a field's schema."""
    if "anyOf" in schema:
        parts = [_describe(p) for p in schema["anyOf"]]
        return " or ".join(parts)
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind == "null":
        return "null"
    if "enum" in schema:
        return "one of " + ", ".join(schema["enum"])
    if kind == "array":
        unique = ", no duplicates" if schema.get("uniqueItems") else ""
        return f"list of {schema['minItems']} to {schema['maxItems']}{unique} of: {_describe(schema['items'])}"
    if kind == "object":
        return "object {" + ", ".join(schema["properties"]) + "}"
    if kind == "integer":
        return f"integer ≥ {schema['minimum']}"
    if "description" in schema:
        return str(schema["description"])
    if kind == "string" and "maxLength" in schema:
        return f"text, {schema['minLength']} to {schema['maxLength']} characters"
    return str(kind)
