"""Human-readable rendering of cases for the terminal (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Terminal(Console):
    """A console whose closed pipe ends the command like every other write's (``stop_on_broken_pipe``:
    quietly, exit 141), not rich's own way (exit 1)."""

    def on_broken_pipe(self) -> None:
        from ledger.cli.errors import stop_on_broken_pipe

        self.quiet = True
        stop_on_broken_pipe()


def terminal() -> Console:
    """The terminal's width on a terminal; 160 columns when the output goes to a file or a pipe."""
    import sys

    return Terminal() if sys.stdout.isatty() else Terminal(width=160)


def _text(value: Any) -> str:
    return "" if value is None else escape(str(value))


def render_case(view: dict[str, Any], timeline: Sequence[dict[str, Any]] = ()) -> None:
    """The case: its footage, holds, releases, referrals and (when given) its timeline."""
    console = terminal()
    console.print(
        f"[bold]Case {_text(view.get('case_number', '?'))}[/bold] ({view['case_id']}) — {_text(view.get('status'))}, "
        f"{_text(view.get('category'))}, version {view['version']}"
    )
    footage = view.get("footage", [])
    if footage:
        table = Table("footage", "source", "sha256", "custodian", "custody links", "release status", title="Footage")
        for item in footage:
            table.add_row(
                _text(item.get("footage_id")),
                _text(item.get("source")),
                _text(item.get("sha256", ""))[:16] + "…",
                _text(item.get("custodian")),
                _text((item.get("custody") or {}).get("steps", "")),
                _text(item.get("release_status")),
            )
        console.print(table)
    _section(
        console, "Holds", view.get("holds"), ("hold", "scope", "authority", "active", "placed", "lifted"),
        lambda h: (h.get("hold_id"), "whole case" if h.get("scope") == "case" else ", ".join(h.get("scope") or []),
                   h.get("authority"), "yes" if h.get("active") else "no", h.get("placed_at"), h.get("lifted_at")),
    )
    _section(
        console, "Releases", view.get("releases"), ("footage", "derivative", "sha256", "basis", "channel", "released"),
        lambda r: (r.get("footage_id"), r.get("derivative_id"), str(r.get("sha256", ""))[:16] + "…", r.get("basis"),
                   r.get("channel"), r.get("released_at")),
    )
    _section(
        console, "Referrals", view.get("referrals"), ("referral", "authority", "made", "acknowledged"),
        lambda r: (r.get("referral_id"), r.get("authority"), r.get("made_at"),
                   (r.get("acknowledgement") or {}).get("at") or "no"),
    )
    if timeline:
        table = Table("seq", "when", "who", "what", title="Timeline")
        for line in timeline:
            table.add_row(
                _text(line.get("seq")), _text(line.get("occurred_at")),
                f"{_text(line.get('actor'))} ({_text(line.get('role'))})", _text(line.get("label")),
            )
        console.print(table)


def _section(console: Console, title: str, items: Any, columns: Sequence[str], row: Any) -> None:
    items = items or []
    if not items:
        console.print(f"{title}: none")
        return
    table = Table(*columns, title=title)
    for item in items:
        table.add_row(*(_text(value) for value in row(item)))
    console.print(table)


def render_case_list(items: Sequence[dict[str, Any]], next_cursor: str | None) -> None:
    console = terminal()
    if not items:
        console.print("no cases")
        return
    table = Table("case id", "case number", "status", "category", "events", "opened")
    for view in items:
        table.add_row(
            _text(view.get("case_id")), _text(view.get("case_number")), _text(view.get("status")),
            _text(view.get("category")), _text(view.get("version")), _text(view.get("opened_at")),
        )
    console.print(table)
    if next_cursor is not None:
        console.print(f"more: evidence-ledger case list --after {next_cursor}")
