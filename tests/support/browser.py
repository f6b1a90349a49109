"""Driving the in-browser verifier (ledger/verify/web/verify.html) in the browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

VERIFY_PAGE = Path(__file__).resolve().parents[2] / "ledger" / "verify" / "web" / "verify.html"


class VerifierPage:
    """verify.html driven as a person would: type the pins, choose the bundle, read the verdict."""

    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url = page, url

    def open(self) -> VerifierPage:
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready]", state="attached")
        return self

    def check(
        self,
        bundle: Path,
        *,
        vkey: str = "",
        trust_root: str = "",
        witnesses: str = "",
        min_witnesses: str = "",
    ) -> tuple[str, list[str]]:
        """(verdict, finding codes in table order) for ``bundle`` with these pins (``witnesses``: one
        verifier key per line)."""
        self.page.fill("#trust-root", trust_root)
        self.page.fill("#log-key", vkey)
        self.page.fill("#witness-keys", witnesses)
        self.page.fill("#min-witnesses", min_witnesses)
        self.page.evaluate("document.getElementById('verdict').removeAttribute('data-verdict')")
        self.page.set_input_files("#bundle", [])  # so that choosing the same file again is a change
        self.page.set_input_files("#bundle", str(bundle))
        self.page.wait_for_selector("#verdict[data-verdict]", state="attached", timeout=60_000)
        verdict = self.page.get_attribute("#verdict", "data-verdict")
        rows = self.page.query_selector_all("#findings-body tr")
        return verdict, [row.get_attribute("data-code") for row in rows]
