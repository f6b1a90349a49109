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

from tests.support.browser import VERIFY_PAGE, VerifierPage

CHROMIUM = Path(os.environ.get("EVIDENCE_LEDGER_TEST_CHROMIUM", "/usr/bin/chromium"))
CLOSED_NETWORK = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module, on a closed network.

    Not per session: Playwright's synchronous API keeps its event loop marked as running in the thread
    while it is open, so every later test of the same worker that calls ``asyncio.run`` would fail."""
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


# --- pages that read ledgers: the in-browser verifier (verify.html) --------------------------------------


@pytest.fixture
def backend() -> str:
    """Pages read bundles and public views; SQLite ledgers make them here."""
    return "sqlite"


@pytest.fixture
def verifier_file(page: Any) -> VerifierPage:
    """verify.html opened from file://, as a copy on disk is."""
    return VerifierPage(page, VERIFY_PAGE.as_uri()).open()
