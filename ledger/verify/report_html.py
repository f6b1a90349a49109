"""A self-contained HTML verification report a court can read (no scripts, no external assets).

Built from :func:`ledger.verify.report.report_json`; every value goes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from ledger.verify.bundle import BundleVerification
from ledger.verify.bundle_model import FAILED, UNPINNED, VERIFIED
from ledger.verify.report import (
    key_source_text,
    log_key_text,
    media_ref,
    report_json,
    trust_root_text,
    unpinned_message,
    verdict,
)

_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.6rem}h2{font-size:1.2rem;border-bottom:1px solid #999;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #bbb;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#eee}code,.hash{font-family:'Courier New',monospace;font-size:.8rem;word-break:break-all}
.verdict{font-size:1.4rem;padding:.6rem 1rem;border:3px solid}.ok{border-color:#176b2c;color:#176b2c}
.bad{border-color:#a11;color:#a11}.failed{color:#a11;font-weight:bold}.passed{color:#176b2c}
.unpinned{border-color:#b45309;color:#7c2d12;background:#fef3c7}.verdict small{display:block;font-size:.95rem}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:bold}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{_e(classes[i]) if i < len(classes) else ""}">{_e(value)}</td>'
            for i, value in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body) or '<tr><td>none</td></tr>'}</tbody></table>"


def _dl(pairs: Iterable[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"


def _summary(doc: dict[str, Any], v: BundleVerification) -> str:
    m, root = doc["manifest"], doc["trust_root"]
    return _dl(
        [
            ("Bundle file", doc["bundle"]["file"]),
            ("Bundle SHA-256", doc["bundle"]["sha256"]),
            ("Ledger (log origin)", m["origin"]),
            ("Case id", m["case_id"]),
            ("Exported at", m["created_at"]),
            ("Trust root key id", f"{root['key_id']} ({trust_root_text(v)})"),
            ("Log verifier key", log_key_text(v)),
        ]
    )


_BANNER_CLASS = {VERIFIED: "ok", UNPINNED: "unpinned", FAILED: "bad"}


def _banner(v: BundleVerification) -> str:
    """Green VERIFIED, amber UNPINNED (saying what was not pinned) or red FAILED."""
    text = _e(verdict(v))
    if v.verdict == FAILED:
        text += f": {len(v.findings)} finding(s)"
    elif v.verdict == UNPINNED:
        text += f": no finding, but <small>{_e(unpinned_message(v))}</small>"
    return f'<p class="verdict {_BANNER_CLASS[v.verdict]}">{text}</p>'


def _checkpoint(cp: dict[str, Any], pin_file: str | None) -> str:
    if "size" not in cp:
        return "<p>No usable checkpoint.</p>"
    facts = _dl(
        [
            ("Tree size", cp["size"]),
            ("Root (hex)", cp.get("root")),
            ("Root (base64, as in checkpoint.txt)", cp.get("root_base64")),
            ("Log key", cp.get("key")),
            ("Log key taken from", key_source_text(cp.get("key_source"), pin_file)),
            ("Log signature", "valid" if cp.get("signature_valid") else "NOT valid"),
            (
                "Witness policy",
                f"{cp.get('cosigned', 0)} valid cosignature(s), {cp.get('required', 0)} required",
            ),
        ]
    )
    rows = [(w["name"], w["key_id"], w["status"], w.get("timestamp", "")) for w in cp.get("witnesses", [])]
    return facts + _table(["Witness", "Key id", "Result", "Cosigned at (POSIX s)"], rows)


def _case(case: dict[str, Any] | None) -> str:
    if case is None:
        return "<p>No event of the case could be replayed.</p>"
    facts = _dl(
        [
            ("Case number", case["case_number"]),
            ("Category", case["category"]),
            ("Status", case["status"]),
            ("Events", case["version"]),
            ("Opened", case["opened_at"]),
            ("Closed", case.get("closed_at") or "-"),
            ("Evidence accesses recorded", case["accesses"]),
        ]
    )
    footage = [
        (
            f["footage_id"],
            f["source"],
            f["release_status"],
            ", ".join(f["held_by"]),
            f["sha256"],
            ", ".join(f"{d['derivative_id']} ({d['kind']}) {d['sha256']}" for d in f["derivatives"]),
        )
        for f in case["footage"]
    ]
    holds = [
        (
            h["hold_id"],
            h["authority"],
            "whole case" if h["scope"] == "case" else ", ".join(h["scope"]),
            h["placed_at"],
            h["lifted_at"] or "active",
        )
        for h in case["holds"]
    ]
    releases = [
        (
            r["footage_id"],
            r.get("derivative_id") or "",
            r["basis"],
            r["released_at"],
            r["sha256"],
            r.get("url") or "",
        )
        for r in case["releases"]
    ]
    referrals = [
        (
            r["referral_id"],
            r["authority"],
            r["made_at"],
            r["acknowledged_at"] or "not acknowledged",
            r["acknowledged_by"] or "",
        )
        for r in case["referrals"]
    ]
    return (
        facts
        + "<h3>Footage and release status</h3>"
        + _table(
            ["Footage", "Source", "Release status", "Held by", "SHA-256", "Derivatives"],
            footage,
            ["", "", "", "", "hash", "hash"],
        )
        + "<h3>Investigation holds</h3>"
        + _table(["Hold", "Authority", "Scope", "Placed", "Lifted"], holds)
        + "<h3>Releases</h3>"
        + _table(
            ["Footage", "Derivative", "Basis", "Released at", "SHA-256", "URL"],
            releases,
            ["", "", "", "", "hash"],
        )
        + "<h3>Referrals</h3>"
        + _table(["Referral", "Authority", "Made at", "Acknowledged", "By"], referrals)
    )


def _timeline(rows: list[dict[str, Any]]) -> str:
    data = [
        (
            r["seq"],
            r["occurred_at"],
            r["integrated_at"],
            r["type"],
            r["actor"],
            r["role"],
            r["signer"],
            r["leaf_index"],
            r["envelope_sha256"],
            "ok" if r["ok"] else "FINDING",
        )
        for r in rows
    ]
    headers = [
        "Seq",
        "Occurred (signer's time)",
        "Logged at",
        "Type",
        "Signed by",
        "Role",
        "Key id",
        "Leaf",
        "Envelope SHA-256",
        "Result",
    ]
    return _table(headers, data, ["", "", "", "", "", "", "hash", "", "hash"])


def render_html(v: BundleVerification, *, allow_unpinned: bool = False) -> str:
    doc = report_json(v, allow_unpinned=allow_unpinned)
    findings = [(f["code"], f["step"], _location(f), f["message"]) for f in doc["findings"]]
    steps = [(s["step"], s["title"], s["status"], s["detail"]) for s in doc["steps"]]
    media = [(r["sha256"], media_ref(r), r["status"]) for r in doc["media"]]
    keys = [
        (k["key_id"], k["actor"], k["role"], k["authority"] or "", k["registered_at"], k["revoked_at"] or "")
        for k in doc["keys"]
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Evidence bundle verification: {_e(verdict(v))}</title><style>{_CSS}</style></head><body>",
        "<h1>Evidence bundle verification report</h1>",
        _banner(v),
        _summary(doc, v),
        "<h2>Verification steps</h2>",
        _steps_table(steps),
        "<h2>Findings</h2>",
        _table(["Code", "Check", "Location", "Description"], findings),
        "<h2>Checkpoint and witnesses</h2>",
        _checkpoint(doc["checkpoint"], v.pin_file),
        "<h2>Case state (replayed from the signed events)</h2>",
        _case(doc["case"]),
        "<h2>Case timeline</h2>",
        _timeline(doc["timeline"]),
        "<h2>Signing keys (from the key registry in the bundle)</h2>",
        _table(["Key id", "Holder", "Role", "Authority", "Registered", "Revoked"], keys, ["hash"]),
        "<h2>Access log (reads, downloads and refusals of this case)</h2>",
        _access(doc["access"], v.manifest.has_access_log),
        "<h2>Media files</h2>",
        _table(["SHA-256", "Footage / derivative", "Result"], media, ["hash"]),
        "<h2>Caveats</h2>",
        "<ul>" + "".join(f"<li>{_e(c)}</li>" for c in doc["caveats"]) + "</ul>"
        if doc["caveats"]
        else "<p>None.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _access(access: dict[str, Any], present: bool) -> str:
    if not present:
        return "<p>Not in this bundle (format 1).</p>"
    cp = access["checkpoint"]
    facts = _dl(
        [
            ("Access checkpoint origin", cp.get("origin", "none")),
            ("Size", cp.get("size", "-")),
            ("Root (hex)", cp.get("root", "-")),
            ("Signature", "valid" if cp.get("signature_valid") else "NOT valid or absent"),
        ]
    )
    rows = [
        (
            r["index"], r.get("recorded_at"), r.get("action"), r.get("outcome"), r.get("code") or "",
            r.get("actor"), r.get("role") or "", r.get("token_id") or "", r.get("item") or "",
            "ok" if r["ok"] else "FINDING",
        )
        for r in access["entries"]
    ]
    headers = ["Index", "Recorded at", "Action", "Outcome", "Code", "Actor", "Role", "Token id", "Item", "Result"]
    return facts + _table(headers, rows, ["", "", "", "", "", "", "", "hash", "hash"])


def _steps_table(steps: list[tuple[int, str, str, str]]) -> str:
    rows = "".join(
        f'<tr><td>{_e(n)}</td><td>{_e(title)}</td><td class="{_e(status.replace(" ", "-"))}">{_e(status)}</td>'
        f"<td>{_e(detail)}</td></tr>"
        for n, title, status, detail in steps
    )
    return f"<table><thead><tr><th>Check</th><th>What it proves</th><th>Result</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table>"


def _location(finding: dict[str, Any]) -> str:
    parts = [
        f"{k.replace('_', ' ')} {finding[k]}"
        for k in ("leaf_index", "case_id", "seq")
        if finding.get(k) is not None
    ]
    path = (finding.get("evidence") or {}).get("path")
    return ", ".join(parts + ([f"file {path}"] if path else [])) or "bundle"
