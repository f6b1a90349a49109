"""Human-readable rendering of a case for the terminal (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def render_case(view: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]Case {view.get('case_number', '?')}[/bold] ({view['case_id']}) — {view.get('status')}, "
        f"{view.get('category')}, version {view['version']}"
    )
    footage = view.get("footage", [])
    if footage:
        table = Table("footage", "source", "sha256", "custodian", "custody links", "release status")
        for item in footage:
            table.add_row(
                str(item.get("footage_id")),
                str(item.get("source")),
                str(item.get("sha256", ""))[:16] + "…",
                str(item.get("custodian")),
                str((item.get("custody") or {}).get("steps", "")),
                str(item.get("release_status")),
            )
        console.print(table)
    for key in ("holds", "releases", "referrals"):
        items = view.get(key) or []
        console.print(f"{key}: {len(items)}")
