"""The public release log for people: an HTML page, a CSV file and an Atom feed.

All three are read from exactly what ``GET /v1/public/releases`` and ``GET /v1/public/statistics``
serve (``Ledger.public_releases`` / ``Ledger.public_statistics``: MAC-checked rows, refused with
``STATE_TAMPERED`` when a row was planted, edited or deleted) and show no other field: a release's
SHA-256, time, basis, channel and URL. No case number, id, device or recording time (docs/privacy.md,
"Public exposure"), so nothing here can tell that an unreleased item exists.

Everything that came from a signed event is escaped for where it goes (HTML text and attributes,
XML, CSV cells that a spreadsheet would read as a formula), and a URL is a link only when it is
http(s). The page needs no JavaScript, loads nothing from elsewhere and sends its own
Content-Security-Policy.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.appending import runtime_of
from api.errors import problems
from api.reads import Reading, reading

router = APIRouter(tags=["public"])

ATOM_NS = "http://www.w3.org/2005/Atom"
CSV_COLUMNS = ("released_at", "sha256", "basis", "channel", "url")
#: a cell starting with one of these is a formula (or a DDE payload) to a spreadsheet
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: characters XML 1.0 cannot carry at all; replaced, never passed through
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: the page's verifier: another page of this service (it checks a bundle in the browser)
VERIFIER = "/verify"
#: an Atom document needs an ``updated``; a feed without releases has never been updated
NEVER = "1970-01-01T00:00:00Z"
FEED_NAMESPACE = uuid.UUID("6b1d9b52-6f7c-5d6e-9b8e-2f1d3c4a5b60")

STYLE = """
:root { color: #1a1a1a; background: #ffffff; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 0.25rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; }
a { color: #0645ad; }
a:visited { color: #5a2d82; }
a:focus, .scroll:focus { outline: 3px solid #1a1a1a; outline-offset: 2px; }
p, li { max-width: 45rem; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; border: 1px solid #8a8a8a; position: relative; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 0.5rem; }
th, td { text-align: left; vertical-align: top; padding: 0.4rem 0.6rem; border-top: 1px solid #8a8a8a; }
thead th { background: #ececec; }
td.num, th.num { text-align: right; }
td.sha { min-width: 15rem; max-width: 22rem; }
td.sha code { word-break: break-all; }
td.copy { min-width: 9rem; max-width: 18rem; overflow-wrap: anywhere; }
tbody th { white-space: nowrap; }
code { font: 0.85rem/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
.chart { max-width: 40rem; width: 100%; height: auto; display: block; }
.chart .bar { fill: #1f4e79; }
.chart .axis { stroke: #1a1a1a; }
.chart text { fill: #1a1a1a; font: 11px system-ui, sans-serif; }
.note { color: #333333; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
"""
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
#: nothing but this page's own stylesheet: no script, no frame, no request anywhere
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


# --- reading: the public endpoints' own sources ----------------------------------------------------


def _releases(read: Reading) -> list[dict[str, Any]]:
    """Exactly the entries ``GET /v1/public/releases`` serves (checked rows; ``STATE_TAMPERED`` else), from
    the database the read was routed to (api/reads.py)."""
    return read.ledger.public_releases()


def _statistics(request: Request, read: Reading) -> dict[str, Any]:
    return read.ledger.public_statistics(runtime_of(request).clock())


# --- escaping -------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A value as text every format here can carry (characters XML forbids become U+FFFD)."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def _h(value: Any) -> str:
    """Escaped for HTML text and quoted attribute values (``&``, ``<``, ``>``, ``"`` and ``'``)."""
    return html.escape(_text(value), quote=True)


def _web_url(value: Any) -> str | None:
    """The URL if it is an absolute http(s) URL (so never ``javascript:`` or ``data:``), else None."""
    text = _text(value)
    if re.fullmatch(r"https?://[^\s\x00-\x1f\x7f]+", text) is None:
        return None
    return text


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: one starting like a formula gets a leading ``'``."""
    text = _text(value)
    return "'" + text if text.startswith(FORMULA_START) else text


# --- the CSV and the feed ---------------------------------------------------------------------------


def releases_csv(entries: Iterable[Mapping[str, Any]]) -> str:
    """RFC 4180: a header row, CRLF line ends, fields quoted when they hold a comma, quote or line end."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([csv_cell(entry.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def entry_id(origin: str, entry: Mapping[str, Any]) -> str:
    """A stable Atom id for a release, from the entry's own fields and the ledger's origin only."""
    name = "\n".join([origin, *(_text(entry.get(column)) for column in CSV_COLUMNS)])
    return f"urn:uuid:{uuid.uuid5(FEED_NAMESPACE, name)}"


def releases_atom(entries: Sequence[Mapping[str, Any]], *, origin: str, base_url: str) -> bytes:
    """An Atom 1.0 feed (RFC 4287), newest release first; ``updated`` is the newest release's time."""
    ElementTree.register_namespace("", ATOM_NS)

    def sub(parent: ElementTree.Element, tag: str, text: str | None = None, **attrs: str) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: _text(v) for k, v in attrs.items()})
        if text is not None:
            element.text = _text(text)
        return element

    page = base_url.rstrip("/") + "/public"
    feed = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", f"urn:uuid:{uuid.uuid5(FEED_NAMESPACE, origin + '/public/releases')}")
    sub(feed, "title", "Released footage")
    newest = max((_text(e.get("released_at")) for e in entries), default=NEVER)
    sub(feed, "updated", newest)
    author = sub(feed, "author")
    sub(author, "name", origin)
    sub(feed, "link", rel="self", type="application/atom+xml", href=base_url.rstrip("/") + "/v1/public/releases.atom")
    sub(feed, "link", rel="alternate", type="text/html", href=page)
    for entry in reversed(entries):
        item = sub(feed, "entry")
        sub(item, "id", entry_id(origin, entry))
        sub(item, "title", f"Footage released ({_text(entry.get('basis'))}, {_text(entry.get('channel'))})")
        sub(item, "updated", _text(entry.get("released_at")))
        url = _web_url(entry.get("url"))
        sub(item, "link", rel="alternate", href=url or page)
        sub(
            item,
            "summary",
            f"SHA-256 of the released file: {_text(entry.get('sha256'))}. Basis: {_text(entry.get('basis'))}."
            f" Channel: {_text(entry.get('channel'))}." + (f" Published at {url}." if url else ""),
            type="text",
        )
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


# --- the page ---------------------------------------------------------------------------------------


def monthly_release_counts(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Releases per UTC month of the release decision, every month from the first to the last listed
    (empty months too). Derived from the listed entries only: each release is public anyway."""
    counts = Counter(_text(e.get("released_at"))[:7] for e in entries)
    months = sorted(m for m in counts if re.fullmatch(r"\d{4}-\d{2}", m))
    if not months:
        return []
    year, month = (int(part) for part in months[0].split("-"))
    out = []
    while True:
        key = f"{year:04d}-{month:02d}"
        out.append((key, counts.get(key, 0)))
        if key >= months[-1]:
            return out
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def chart_svg(counts: Sequence[tuple[str, int]]) -> str:
    """A bar chart of ``counts`` as inline SVG with a title and a description (the table beside it
    holds the same numbers)."""
    width, height, left, bottom, top = 640, 220, 40, 40, 20
    plot_h = height - bottom - top
    peak = max((n for _, n in counts), default=0) or 1
    slot = (width - left - 10) / max(len(counts), 1)
    bar_w = max(min(slot * 0.7, 48), 2)
    total = sum(n for _, n in counts)
    desc = "; ".join(f"{m}: {n}" for m, n in counts) or "no releases yet"
    noun = "release" if total == 1 else "releases"
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" aria-labelledby="chart-title chart-desc"'
        ' xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Footage released per month</title>',
        f'<desc id="chart-desc">{_h(f"{total} {noun} in all. {desc}.")}</desc>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 5}" y2="{top + plot_h}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = max(1, len(counts) // 8)
    for i, (month, n) in enumerate(counts):
        x = left + i * slot + (slot - bar_w) / 2
        bar_h = plot_h * n / peak
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}">'
            f"<title>{_h(month)}: {n}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_h(month)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _short_time(value: str) -> str:
    """``2026-02-05T18:02:11.000000Z`` as ``2026-02-05 18:02:11`` (the exact value is the ``datetime``)."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z", value)
    return f"{match.group(1)} {match.group(2)}" if match else value


def _release_row(entry: Mapping[str, Any]) -> str:
    sha = _text(entry.get("sha256"))
    url = _web_url(entry.get("url"))
    raw_url = _text(entry.get("url"))
    copy = f'<a href="{_h(url)}" rel="nofollow noopener">{_h(url)}</a>' if url else (_h(raw_url) or "—")
    released = _text(entry.get("released_at"))
    return (
        "<tr>"
        f'<th scope="row"><time datetime="{_h(released)}">{_h(_short_time(released))}</time></th>'
        f'<td class="sha"><code>{_h(sha)}</code></td>'
        f"<td>{_h(entry.get('basis'))}</td>"
        f"<td>{_h(entry.get('channel'))}</td>"
        f'<td class="copy">{copy}</td>'
        f'<td><a href="#check-heading" class="how">Check your copy<span class="vh"> of {_h(sha[:12])}…</span></a><br>'
        f'<a href="{VERIFIER}" class="verify">Check a case bundle</a><br>'
        '<a href="/v1/log/checkpoint" class="proof">Signed checkpoint</a></td>'
        "</tr>"
    )


def _statistics_rows(months: Sequence[Mapping[str, Any]]) -> str:
    def span(value: Mapping[str, Any]) -> str:
        return f"{_h(value.get('at_least'))}–{_h(value.get('at_most'))}"

    return "".join(
        "<tr>"
        f'<th scope="row">{_h(m.get("month"))}</th>'
        f'<td class="num">{span(m["released"])}</td>'
        f'<td class="num">{span(m["withheld_under_investigation"])}</td>'
        f'<td class="num">{span(m["awaiting_decision"])}</td>'
        "</tr>"
        for m in months
    )


def render_page(entries: Sequence[Mapping[str, Any]], statistics: Mapping[str, Any]) -> str:
    """The whole page: complete without JavaScript (it has none)."""
    counts = monthly_release_counts(entries)
    newest_first = list(reversed(entries))
    rows = "".join(_release_row(e) for e in newest_first) or (
        '<tr><td colspan="6">No footage has been released yet.</td></tr>'
    )
    count_rows = "".join(f'<tr><th scope="row">{_h(m)}</th><td class="num">{n}</td></tr>' for m, n in counts)
    months = statistics.get("months", [])
    stats = (
        '<div class="scroll" role="region" aria-labelledby="stats-caption" tabindex="0"><table>'
        '<caption id="stats-caption">Footage by month of capture, counted at each month\'s cutoff'
        f" (ranges of {_h(statistics.get('bucket'))})</caption>"
        '<thead><tr><th scope="col">Month of capture</th><th scope="col" class="num">Released</th>'
        '<th scope="col" class="num">Withheld under investigation</th>'
        '<th scope="col" class="num">Awaiting decision</th></tr></thead>'
        f"<tbody>{_statistics_rows(months)}</tbody></table></div>"
        if months
        else "<p>No month has reached its cutoff yet.</p>"
    )
    chart = (
        f"{chart_svg(counts)}"
        '<div class="scroll" role="region" aria-labelledby="counts-caption" tabindex="0"><table>'
        '<caption id="counts-caption">Releases per month (the numbers in the chart)</caption>'
        '<thead><tr><th scope="col">Month of release</th><th scope="col" class="num">Releases</th></tr></thead>'
        f"<tbody>{count_rows}</tbody></table></div>"
        if counts
        else "<p>No footage has been released yet.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Released footage — public release log</title>
<link rel="alternate" type="application/atom+xml" title="Released footage (Atom)" href="/v1/public/releases.atom">
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>Released footage</h1>
<p>Body-worn and City camera footage of federal officials that the Cambridge Police Department released
under the City's executive order, as recorded in its public, append-only evidence ledger. Each line is a
signed release decision: when it was made, on what basis, where the file was published and the SHA-256 of
the released file, so anyone can check that a copy is the released one.</p>
</header>
<main>
<section aria-labelledby="releases-heading">
<h2 id="releases-heading">Every release</h2>
<p class="note">Newest first. Also as <a href="/v1/public/releases.csv">CSV</a>,
<a href="/v1/public/releases.atom">an Atom feed</a> and <a href="/v1/public/releases">JSON</a>.</p>
<div class="scroll" role="region" aria-labelledby="releases-caption" tabindex="0">
<table>
<caption id="releases-caption">Footage released ({len(entries)} in all)</caption>
<thead><tr><th scope="col">Released (UTC)</th><th scope="col">SHA-256 of the released file</th>
<th scope="col">Basis</th><th scope="col">Channel</th><th scope="col">Published copy</th>
<th scope="col">Check it</th></tr></thead>
<tbody>{rows}</tbody>
</table>
</div>
</section>
<section aria-labelledby="months-heading">
<h2 id="months-heading">Releases per month</h2>
{chart}
</section>
<section aria-labelledby="stats-heading">
<h2 id="stats-heading">Footage by month of capture</h2>
<p>How much of each month's footage was released, withheld because of an investigation or still awaiting a
decision, counted as it stood at a fixed cutoff after the month ended. Each count is a range so that no
single item can be read from it.</p>
{stats}
</section>
<section aria-labelledby="check-heading">
<h2 id="check-heading">How to check a release</h2>
<ul>
<li>Compute the SHA-256 of your copy (<code>sha256sum FILE</code>) and compare it with the table.</li>
<li>The <a href="{VERIFIER}">in-browser verifier</a> checks a case bundle — every signature, the release
decision's leaf and inclusion proof, and the signed checkpoint — without sending it anywhere.</li>
<li>The log's <a href="/v1/log/checkpoint">latest signed checkpoint</a> and
<a href="/v1/log/key">verifier key</a> are public, as are its leaves
(<code>/v1/log/entries/INDEX</code>) and proofs (<code>/v1/log/proof/inclusion?index=INDEX</code>).</li>
</ul>
<p class="note">This page lists releases only. It never shows case numbers, ids, devices or recording
times, and says nothing about footage that was not released.</p>
</section>
</main>
</body>
</html>
"""


def _page_response(body: str) -> Response:
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_CSP, **SECURITY_HEADERS},
    )


HTML = {"text/html": {"schema": {"type": "string"}}}


@router.get(
    "/public",
    summary="The public release log as a web page (no JavaScript); public",
    description="The same releases and statistics as the JSON endpoints, nothing more. See docs/api.md.",
    response_class=Response,
    responses={200: {"content": HTML}, **problems(503)},
)
def public_page(request: Request) -> Response:
    read = reading(request)
    entries = _releases(read)
    return read.stamp(_page_response(render_page(entries, _statistics(request, read))))


@router.get(
    "/v1/public/releases.csv",
    summary="Every release as CSV (RFC 4180, header row); public",
    description="Columns released_at, sha256, basis, channel, url; the entries of /v1/public/releases.",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **problems(503)},
)
def public_releases_csv(request: Request) -> Response:
    read = reading(request)
    return read.stamp(Response(
        releases_csv(_releases(read)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="releases.csv"', **SECURITY_HEADERS},
    ))


@router.get(
    "/v1/public/releases.atom",
    summary="Every release as an Atom 1.0 feed, newest first; public",
    description="One entry per release of /v1/public/releases; the feed's updated is the newest release's time.",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {"schema": {"type": "string"}}}}, **problems(503)},
)
def public_releases_atom(request: Request) -> Response:
    runtime = runtime_of(request)
    base_url = runtime.api_settings.public_url or str(request.base_url)
    read = reading(request)
    body = releases_atom(_releases(read), origin=runtime.ledger.origin, base_url=base_url)
    return read.stamp(Response(body, media_type="application/atom+xml; charset=utf-8", headers=SECURITY_HEADERS))
