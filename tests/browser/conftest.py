"""A real browser for the page tests: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright.

Playwright cannot download a browser here, so it is pointed at the system one. Every page is loaded on a
closed network: Chromium resolves no host but loopback (``--host-resolver-rules``), so a page that needs a
CDN fails its test instead of passing on a machine that happens to be online. Without Chromium the tests
are skipped with a loud reason; in CI (``CI`` set) that is a failure.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("EVIDENCE_LEDGER_TEST_CHROMIUM", "/usr/bin/chromium"))
CLOSED_NETWORK = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test process, on a closed network."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} — the browser tests must run here")
        warnings.warn(f"SKIPPING BROWSER TESTS: {reason}", stacklevel=1)
        pytest.skip(f"SKIPPING BROWSER TESTS: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CLOSED_NETWORK)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; every request that leaves loopback is recorded in ``page.outside`` (must stay empty)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    outside: list[str] = []
    opened.on(
        "request",
        lambda request: outside.append(request.url)
        if not request.url.startswith(("http://127.0.0.1", "file://", "data:", "blob:", "about:"))
        else None,
    )
    opened.outside = outside
    try:
        yield opened
    finally:
        context.close()


# --- the in-browser verifier (verify.html) -----------------------------------------------------------

VERIFY_PAGE = Path(__file__).resolve().parents[2] / "ledger" / "verify" / "web" / "verify.html"


@pytest.fixture
def backend() -> str:
    """Pages read bundles and public views; SQLite ledgers make them here."""
    return "sqlite"


class VerifierPage:
    """verify.html driven as a person would: type the pins, choose the bundle, read the verdict."""

    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url = page, url

    def open(self) -> VerifierPage:
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready]", state="attached")
        return self

    def check(
        self, bundle: Path, *, vkey: str = "", trust_root: str = "", witnesses: str = "", min_witnesses: str = ""
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


@pytest.fixture
def verifier_file(page: Any) -> VerifierPage:
    """verify.html opened from file://, as a copy on disk is."""
    return VerifierPage(page, VERIFY_PAGE.as_uri()).open()
