"""Driving the `evidence-ledger` command line in tests: the command tree, a CLI bound to a test ledger, the
one-line error every command prints."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from typer.main import get_command
from typer.testing import CliRunner

from ledger.cli.app import commands
from ledger.envelope.keys import write_private_key
from ledger.store import Ledger
from tests.support.cases import Actors


def leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from leaves(sub, (*path, name))
    else:
        yield " ".join(path), command


def command_tree() -> click.Command:
    import api.cli  # noqa: F401 - registers serve and witness serve

    return get_command(commands())


class Cli:
    def __init__(self, ledger: Ledger, database_url: str | None, tmp_path: Path) -> None:
        self.ledger, self.tmp_path = ledger, tmp_path
        self.env = {"EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir)}
        if database_url:
            self.env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
        self.actors = Actors.register(ledger)

    def key_file(self, who: str) -> str:
        path = self.tmp_path / f"{who}.pem"
        if not path.exists():
            write_private_key(self.actors.keys[who], path)
        return str(path)

    def run(self, *args: str, code: int) -> Any:
        result = CliRunner().invoke(commands(), list(args), env=self.env, terminal_width=400)
        assert result.exit_code == code, f"{args[:2]} exited {result.exit_code}: {result.output}"
        return result

    def append(self, case_id: str, event_type: str, who: str | Path, body: Any, code: int = 0) -> Any:
        key = str(who) if isinstance(who, Path) else self.key_file(who)
        return self.run("append", case_id, event_type, "--key", key, "--body", json.dumps(body), code=code)


#: every error line: ``error: CODE: message``
ERROR_LINE = re.compile(r"error: [A-Z][A-Z0-9_]*: \S")


def error_line(result: Any) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]) and result.stdout == "", result.output
    return lines[0]
