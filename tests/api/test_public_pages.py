"""The public release log for people (``/public``, the CSV and the Atom feed): the same entries as
``GET /v1/public/releases`` and nothing more, escaped for each format, refused like the JSON when a
read-model row was planted, and the API docs served from local assets."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from api.routes.public_pages import csv_cell, releases_atom, releases_csv, render_page
from api.settings import ApiSettings
from ledger.settings import Settings
from ledger.store import Ledger
from ops.screenshots import demo_ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import case_opened, footage_captured, hold_placed, new_case_id

ATOM = "{http://www.w3.org/2005/Atom}"
PAGES = ("/public", "/v1/public/releases.csv", "/v1/public/releases.atom")
HOSTILE_CHANNEL = "=HYPERLINK(\"http://x\",\"<b>&'click'</b>\")"
HOSTILE_URL = "https://example.org/r?a=1&b=\"><script>alert(1)</script>"


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def parse_atom(body: bytes) -> ElementTree.Element:
    """The feed as XML 1.0 parses it (our own output, so no entity attacks to fear)."""
    return ElementTree.fromstring(body)  # noqa: S314


def sha(n: int) -> str:
    return f"{n:064x}"


def released_case(api: Api, *, channel: str = "city website", url: str | None = None) -> str:
    """A case with a released item, a held one and one never decided; returns the case id."""
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened("CPD-2026-0107"))
    for n, footage in enumerate(("ftg-released", "ftg-held", "ftg-waiting"), start=1):
        api.ok("investigator", case_id, "FootageCaptured", footage_captured(footage, sha=sha(n)))
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-1", ["ftg-held"]))
    body = {"footage_id": "ftg-released", "sha256": sha(1), "basis": "executive_order", "channel": channel}
    if url is not None:
        body["url"] = url
    api.ok("supervisor", case_id, "FootageReleased", body)
    return case_id


def test_csv_is_the_json_list_with_a_header_and_neutralised_formulas(api: Api) -> None:
    case_id = released_case(api, channel=HOSTILE_CHANNEL, url=HOSTILE_URL)
    listed = api.client.get("/v1/public/releases", params={"limit": 1000}).json()["items"]
    response = api.client.get("/v1/public/releases.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.endswith(b"\r\n") and b"\r\n" in response.content.split(b"\r\n", 1)[0] + b"\r\n"
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["released_at", "sha256", "basis", "channel", "url"]
    assert rows[1:] == [
        [e["released_at"], e["sha256"], e["basis"], "'" + HOSTILE_CHANNEL, e["url"]] for e in listed
    ]
    for secret in ("CPD-2026-0107", case_id, "ftg-", sha(2), sha(3), "BWC-0042"):
        assert secret not in response.text


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_starts_like_a_formula_is_quoted_as_text(start: str) -> None:
    assert csv_cell(start + "SUM(A1)") == "'" + start + "SUM(A1)"
    assert csv_cell("city " + start) == "city " + start
    assert csv_cell(None) == ""


def test_csv_quotes_commas_quotes_and_line_ends() -> None:
    entries = [{"released_at": "2026-02-05T18:00:00Z", "sha256": sha(1), "basis": "other",
                "channel": 'a, "b"\nc', "url": None}]
    text = releases_csv(entries)
    assert text == (
        "released_at,sha256,basis,channel,url\r\n"
        f'2026-02-05T18:00:00Z,{sha(1)},other,"a, ""b""\nc",\r\n'
    )
    assert list(csv.reader(io.StringIO(text, newline="")))[1][3] == 'a, "b"\nc'


def test_atom_is_valid_and_escapes_everything(api: Api) -> None:
    released_case(api, channel=HOSTILE_CHANNEL, url=HOSTILE_URL)
    listed = api.client.get("/v1/public/releases", params={"limit": 1000}).json()["items"]
    response = api.client.get("/v1/public/releases.atom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = parse_atom(response.content)
    assert feed.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated", "author"):
        assert feed.find(f"{ATOM}{tag}") is not None, tag
    assert feed.findtext(f"{ATOM}updated") == listed[-1]["released_at"]
    self_link = feed.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None and self_link.get("href", "").endswith("/v1/public/releases.atom")
    (entry,) = feed.findall(f"{ATOM}entry")
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry.findtext(f"{ATOM}id") or "")
    assert entry.findtext(f"{ATOM}updated") == listed[0]["released_at"]
    assert HOSTILE_CHANNEL in (entry.findtext(f"{ATOM}title") or "")
    link = entry.find(f"{ATOM}link")
    assert link is not None and link.get("href") == HOSTILE_URL  # exactly, after XML unescaping
    assert sha(1) in (entry.findtext(f"{ATOM}summary") or "")
    assert b"<script>" not in response.content and b"<b>" not in response.content
    assert b"CPD-2026-0107" not in response.content


def test_atom_ids_are_stable_and_the_empty_feed_is_valid() -> None:
    entries = [
        {"released_at": "2026-02-05T18:00:00Z", "sha256": sha(1), "basis": "other", "channel": "x", "url": None},
        {"released_at": "2026-03-01T09:00:00Z", "sha256": sha(2), "basis": "court_order", "channel": "y", "url": None},
    ]
    first = parse_atom(releases_atom(entries, origin="o", base_url="http://h/"))
    again = parse_atom(releases_atom(entries, origin="o", base_url="http://h/"))
    ids = [e.findtext(f"{ATOM}id") for e in first.findall(f"{ATOM}entry")]
    assert ids == [e.findtext(f"{ATOM}id") for e in again.findall(f"{ATOM}entry")]
    assert len(set(ids)) == 2
    assert [e.findtext(f"{ATOM}updated") for e in first.findall(f"{ATOM}entry")] == [
        "2026-03-01T09:00:00Z", "2026-02-05T18:00:00Z"]  # newest first
    odd = [{**entries[0], "channel": "bell\x07 and \ufffe", "url": "javascript:alert(1)"}]
    parsed = parse_atom(releases_atom(odd, origin="o", base_url="http://h/"))  # XML 1.0 cannot carry \x07
    (entry,) = parsed.findall(f"{ATOM}entry")
    assert "bell\ufffd and \ufffd" in (entry.findtext(f"{ATOM}title") or "")
    assert entry.find(f"{ATOM}link").get("href") == "http://h/public"  # type: ignore[union-attr]
    empty = parse_atom(releases_atom([], origin="o", base_url="http://h/"))
    assert empty.findtext(f"{ATOM}updated") == "1970-01-01T00:00:00Z" and not empty.findall(f"{ATOM}entry")


class Outline(HTMLParser):
    """Headings, table parts and link targets of a page, and whether any script or style source is external."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def outline(page: str) -> Outline:
    parser = Outline()
    parser.feed(page)
    return parser


def test_the_page_is_accessible_html_with_the_listed_releases_only(api: Api) -> None:
    case_id = released_case(api, url="https://www.cambridgema.gov/police/releases/1")
    listed = api.client.get("/v1/public/releases", params={"limit": 1000}).json()["items"]
    response = api.client.get("/public")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    page = outline(response.text)
    assert ("html", {"lang": "en"}) in page.tags
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in page.tags
    assert page.headings.count(1) == 1 and page.headings[0] == 1
    assert all(b - a <= 1 for a, b in zip(page.headings, page.headings[1:], strict=False))  # no level skipped
    tags = [t for t, _ in page.tags]
    assert {"table", "caption", "thead", "tbody", "svg", "rect", "title", "desc"} <= set(tags)
    assert all(a.get("scope") in ("col", "row") for t, a in page.tags if t == "th")
    assert "script" not in tags and not any(t == "link" and a.get("rel") == "stylesheet" for t, a in page.tags)
    assert listed[0]["sha256"] in response.text and listed[0]["released_at"] in response.text
    assert {"/verify", "/v1/log/checkpoint", "/v1/log/key", "/v1/public/releases.csv",
            "/v1/public/releases.atom", listed[0]["url"]} <= set(page.links)
    for secret in ("CPD-2026-0107", case_id, "ftg-", sha(2), sha(3), "BWC-0042", "16:58"):
        assert secret not in response.text, secret


def test_the_page_escapes_what_came_from_events() -> None:
    entries = [{"released_at": "2026-02-05T18:00:00Z", "sha256": sha(1), "basis": "<b>\"basis\"&'",
                "channel": "<script>alert(1)</script>", "url": "javascript:alert(1)"},
               {"released_at": "2026-02-06T18:00:00Z", "sha256": sha(2), "basis": "other",
                "channel": "x", "url": 'https://e.org/"onmouseover="alert(1)'}]
    page = render_page(entries, {"bucket": 5, "months": []})
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;&quot;basis&quot;&amp;&#x27;" in page
    parsed = outline(page)
    assert "javascript:alert(1)" not in parsed.links  # shown as text, never a link
    assert 'https://e.org/"onmouseover="alert(1)' in parsed.links  # one attribute value, nothing injected
    assert not any("onmouseover" in a for _, a in parsed.tags)


def test_the_chart_counts_releases_per_month_with_empty_months() -> None:
    entries = [{"released_at": at, "sha256": sha(i), "basis": "other", "channel": "c", "url": None}
               for i, at in enumerate(["2026-02-05T18:00:00Z", "2026-02-09T18:00:00Z", "2026-04-01T00:00:00Z"])]
    page = render_page(entries, {"bucket": 5, "months": []})
    bars = re.findall(r'<rect class="bar"[^>]*height="([0-9.]+)"><title>([0-9-]+): (\d+)</title>', page)
    assert [(month, int(n)) for _, month, n in bars] == [("2026-02", 2), ("2026-03", 0), ("2026-04", 1)]
    heights = [float(h) for h, _, _ in bars]
    assert heights[0] == 2 * heights[2] and heights[1] == 0
    assert "3 releases in all. 2026-02: 2; 2026-03: 0; 2026-04: 1." in page


def test_a_planted_public_row_is_refused_on_every_page(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    for path in PAGES:
        assert api.client.get(path).status_code == 200
    planted = json.dumps([{"sha256": sha(9), "released_at": "2026-02-06T00:00:00Z", "basis": "other",
                           "channel": "planted", "url": None}])
    with api.ledger.db.write() as tx:  # a database administrator passes the statistics row off as a release
        tx.execute("UPDATE public_releases SET status = 'released', entry = ? WHERE case_id = ?", (planted, case_id))
    for path in PAGES:
        response = api.client.get(path)
        body = problem(response, 503, "STATE_TAMPERED")
        assert body["refs"] == {"stream": "public_releases"}
        assert "planted" not in response.text and sha(9) not in response.text
    with api.ledger.db.write() as tx:  # or plants a second row for a footage that was never released
        tx.execute("UPDATE public_releases SET status = 'statistics', entry = '[]' WHERE case_id = ?", (case_id,))
        tx.execute(
            "INSERT INTO public_releases (case_id, footage_id, status, entry, version, mac)"
            " SELECT case_id, 'ftg-planted', 'released', ?, version, mac FROM public_releases WHERE case_id = ?",
            (planted, case_id),
        )
    for path in PAGES:
        problem(api.client.get(path), 503, "STATE_TAMPERED")


def test_a_hold_changes_no_byte_of_the_pages(api: Api) -> None:
    case_id = released_case(api)

    def snapshot() -> list[bytes]:
        return [api.client.get(path).content for path in PAGES]

    before = snapshot()
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-2", ["ftg-waiting"]))
    api.ok("investigator", case_id, "FootageCaptured", footage_captured("ftg-new", sha=sha(7)))
    assert snapshot() == before


def test_api_docs_come_from_local_assets(api: Api) -> None:
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        response = api.client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert sources and all(s.startswith("/docs-assets/") for s in sources), sources
        assert "http://" not in response.text and "https://" not in response.text
        assert "fonts.googleapis" not in response.text
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "http" not in csp
        asset_response = api.client.get(f"/docs-assets/{asset}")
        assert asset_response.status_code == 200 and len(asset_response.content) > 100_000
    assert "validatorUrl" in api.client.get("/docs").text
    assert b"cdn.redoc.ly" not in api.client.get("/docs-assets/redoc.standalone.js").content
    assert api.client.get("/docs-assets/swagger-ui.css").headers["content-type"].startswith("text/css")


def test_the_new_endpoints_are_in_the_openapi_document(api: Api) -> None:
    paths: dict[str, Any] = api.client.get("/openapi.json").json()["paths"]
    assert {"/public", "/v1/public/releases.csv", "/v1/public/releases.atom"} <= paths.keys()
    assert "/docs" not in paths and "/redoc" not in paths


def test_the_screenshot_demo_has_released_held_and_waiting_footage(tmp_path: Path) -> None:
    demo_ledger(tmp_path / "data")
    with Ledger(Settings(data_dir=tmp_path / "data")) as ledger:
        releases = ledger.public_releases()
        months = ledger.public_statistics()["months"]
    assert len(releases) == 11 and len({r["released_at"][:7] for r in releases}) == 7
    assert len(months) >= 6


def test_the_feed_links_to_the_configured_public_address_behind_a_proxy(ledger: Ledger) -> None:
    with running_api(ledger, public_url="https://evidence.cambridgema.gov/ledger") as api:
        feed = parse_atom(api.client.get("/v1/public/releases.atom").content)
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == "https://evidence.cambridgema.gov/ledger/v1/public/releases.atom"
    assert links["alternate"] == "https://evidence.cambridgema.gov/ledger/public"
    for unusable in ("javascript:alert(1)", "evidence.cambridgema.gov", "https://a b"):
        with pytest.raises(ValueError):
            ApiSettings(public_url=unusable)
