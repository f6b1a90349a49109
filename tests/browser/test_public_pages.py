"""``/public``, ``/docs`` and ``/redoc`` in a real browser, served by a real ``evidence-ledger serve`` on a
closed network: the public page renders its rows, chart and links with JavaScript off and fits a phone;
the API docs render every operation of the OpenAPI document from local assets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.store import Ledger
from ops.procs import Server, serving
from ops.screenshots import api_docs, public_pages
from tests.support.cases import Actors, case_opened, footage_captured, hold_placed, new_case_id

ROOT = Path(__file__).resolve().parents[2]
PHONE = {"width": 375, "height": 740}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def sha(n: int) -> str:
    return f"{n:064x}"


def env_for(ledger: Ledger) -> dict[str, str]:
    """The server runs this checkout's code (PYTHONPATH) on the test's data dir."""
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir), "PYTHONPATH": str(ROOT)}
    if ledger.settings.database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = ledger.settings.database_url
    return env


@pytest.fixture
def released(ledger: Ledger) -> dict[str, Any]:
    """Two released items (one with a published URL), one held and one never decided."""
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened("CPD-2026-0107"))
    for n in range(1, 5):
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured(f"ftg-{n}", sha=sha(n)))
    actors.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-1", ["ftg-3"]))
    actors.ok("supervisor", case_id, "FootageReleased", {
        "footage_id": "ftg-1", "sha256": sha(1), "basis": "executive_order", "channel": "city website",
        "url": "https://www.cambridgema.gov/police/releases/1"})
    actors.ok("supervisor", case_id, "FootageReleased", {
        "footage_id": "ftg-2", "sha256": sha(2), "basis": "public_records_request", "channel": "records office"})
    return {"case_id": case_id, "released": [sha(1), sha(2)], "held": sha(3), "waiting": sha(4)}


@pytest.fixture
def server(ledger: Ledger, tmp_path: Path) -> Iterator[Server]:
    with serving(env_for(ledger), tmp_path / "server.log") as running:
        yield running


def test_public_page_renders_without_javascript(browser: Any, released: dict[str, Any], server: Server) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
        response = page.goto(f"{server.url}/public")
        assert response is not None and response.status == 200
        assert page.locator("h1").count() == 1
        rows = page.locator("#releases-caption >> xpath=ancestor::table >> tbody tr")
        assert rows.count() == 2
        text = page.locator("body").inner_text()
        for digest in released["released"]:
            assert digest in text
        for secret in (released["held"], released["waiting"], released["case_id"], "CPD-2026-0107", "ftg-"):
            assert secret not in text and secret not in page.content(), secret
        # the chart: an inline SVG with one bar per month, and the numbers as a table
        assert page.locator("svg.chart").count() == 1
        assert page.locator("svg.chart rect.bar").count() >= 1
        assert page.locator("svg.chart title").first.text_content() == "Footage released per month"
        box = page.locator("svg.chart").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 30
        # every row links to the verifier and the signed checkpoint; the published copy is a link
        for i in range(2):
            assert rows.nth(i).locator("a[href='/verify']").count() == 1
            assert rows.nth(i).locator("a[href='/v1/log/checkpoint']").count() == 1
        assert page.locator("a[href='https://www.cambridgema.gov/police/releases/1']").count() == 1
        checkpoint = page.locator("a[href='/v1/log/checkpoint']").first
        assert httpx.get(server.url + checkpoint.get_attribute("href")).status_code in (200, 404)
        assert outside == []
    finally:
        context.close()


CONTRAST = """() => {
  const rgb = (c) => (c.match(/[0-9.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (e) => {
    for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || c[3] > 0) return c; }
    return [255, 255, 255];
  };
  const low = [];
  for (const e of document.querySelectorAll('body *')) {
    if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (e.closest('svg')) continue;
    const style = getComputedStyle(e);
    const [a, b] = [lum(rgb(style.color)), lum(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(e.tagName + ': ' + ratio.toFixed(2));
  }
  return low;
}"""


def test_public_page_fits_a_phone(browser: Any, released: dict[str, Any], server: Server) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
        page.goto(f"{server.url}/public")
        assert console == []  # e.g. a stylesheet the page's own CSP refused
        assert page.evaluate(CONTRAST) == []  # WCAG AA: every text at least 4.5:1 against its background
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # nothing sticks out of the viewport except what is inside a scrolling table container
        overflowing = page.evaluate(
            """(width) => [...document.querySelectorAll('body *')]
                .filter(e => !e.closest('.scroll') || e.classList.contains('scroll'))
                .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5); })
                .map(e => e.tagName + (e.className && e.className.baseVal === undefined ? '.' + e.className : ''))""",
            PHONE["width"],
        )
        assert overflowing == []
        container = page.locator(".scroll").first
        scroll = container.evaluate("e => [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX]")
        assert scroll[2] == "auto" and scroll[0] > scroll[1]  # the table is wider and scrolls inside its box
        assert page.locator("svg.chart").bounding_box()["width"] <= PHONE["width"]
    finally:
        context.close()


def _document(server: Server) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(method, path, number of tags) of every operation: Swagger UI lists one under each of its tags."""
    return [
        (m.upper(), path, len(op.get("tags") or ["default"]))
        for path, item in document["paths"].items()
        for m, op in item.items()
        if m in METHODS
    ]


def _console_errors(page: Any) -> list[str]:
    """Console errors and uncaught exceptions (a script or style the page's CSP refused shows up here)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_swagger_ui_lists_every_operation_offline(page: Any, server: Server) -> None:
    errors = _console_errors(page)
    operations = _operations(_document(server))
    assert len(operations) > 20
    blocks = sum(tags for _, _, tags in operations)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {blocks}", timeout=30_000)
    rendered = set()
    for block in page.locator(".opblock").all():
        method = block.locator(".opblock-summary-method").inner_text().strip()
        path = block.locator(".opblock-summary-path").get_attribute("data-path")
        rendered.add((method, path))
    assert rendered == {(method, path) for method, path, _ in operations}
    assert page.locator(".opblock").count() == blocks
    assert errors == [] and page.outside == []


def test_redoc_renders_offline(page: Any, server: Server) -> None:
    document = _document(server)
    expected = _operations(document)
    errors = _console_errors(page)
    page.goto(f"{server.url}/redoc")
    page.wait_for_selector("[data-section-id*='operation/']", timeout=60_000)
    # a section per operation (by operation id; ReDoc names some under their tag as well)
    sections = page.eval_on_selector_all(
        "[data-section-id*='operation/']", "es => [...new Set(es.map(e => e.getAttribute('data-section-id')))]"
    )
    rendered = {section.rsplit("operation/", 1)[1] for section in sections}
    assert rendered == {
        op["operationId"] for item in document["paths"].values() for m, op in item.items() if m in METHODS
    }
    assert len(rendered) == len(expected)
    assert page.get_by_text("Evidence ledger").first.is_visible()
    assert errors == [] and page.outside == []


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_screenshot_script_saves_every_page(
    browser: Any, released: dict[str, Any], server: Server, tmp_path: Path
) -> None:
    saved = [*public_pages(browser, server.url, tmp_path), *api_docs(browser, server.url, tmp_path)]
    assert [p.name for p in saved] == ["public.png", "public-phone.png", "docs.png", "redoc.png"]
    assert _png_size(tmp_path / "public.png")[0] == 1280
    assert _png_size(tmp_path / "public-phone.png")[0] == PHONE["width"]
    assert _png_size(tmp_path / "docs.png") == (1280, 900)
    assert _png_size(tmp_path / "redoc.png") == (1280, 900)
