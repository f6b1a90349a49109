"""Reports of a bundle verification: a JSON document for machines and plain text for people
(``report_html`` renders the court-readable HTML page from the same JSON document).

Reports show types, ids, hashes, times, actors and roles only: never the free text of events
(narratives, summaries, reasons, notes), which stays in the envelopes as evidence.
"""

from __future__ import annotations

from typing import Any

from ledger.verify.bundle import BundleVerification

REPORT_FORMAT = "evidence-ledger-verification/1"
STATUS_MARK = {"passed": "PASS", "failed": "FAIL", "not applicable": "n/a ", "not run": "skip"}


def verdict(v: BundleVerification) -> str:
    return "VERIFIED" if v.verified else "NOT VERIFIED"


def report_json(v: BundleVerification) -> dict[str, Any]:
    m = v.manifest
    return {
        "report_format": REPORT_FORMAT,
        "verdict": verdict(v),
        "verified": v.verified,
        "exit_code": 0 if v.verified else 1,
        "bundle": {"file": v.bundle, "sha256": v.bundle_sha256},
        "manifest": {
            "origin": m.origin,
            "case_id": m.case_id,
            "created_at": m.created_at,
            "trust_root_key_id": m.trust_root_key_id,
            "checkpoint_size": m.checkpoint_size,
            "case_events": m.case_events,
            "files": len(m.files),
        },
        "trust_root": {"key_id": v.trust_root, "pinned": v.trust_root_pinned},
        "checkpoint": v.checkpoint,
        "steps": [
            {"step": s.number, "title": s.title, "status": s.status, "detail": s.detail} for s in v.steps
        ],
        "findings": [f.to_json() for f in v.findings],
        "case": v.case_state,
        "timeline": v.timeline,
        "registry": v.registry,
        "keys": v.keys,
        "media": v.media,
        "caveats": v.caveats,
    }


def _where(finding: dict[str, Any]) -> str:
    parts = [f"{k} {finding[k]}" for k in ("leaf_index", "case_id", "seq") if finding.get(k) is not None]
    path = (finding.get("evidence") or {}).get("path")
    if path:
        parts.append(f"file {path}")
    return ", ".join(parts) or "bundle"


def _checkpoint_lines(cp: dict[str, Any]) -> list[str]:
    if "size" not in cp:
        return ["Checkpoint: none usable"]
    signed = "signature valid" if cp.get("signature_valid") else "signature NOT valid"
    source = "--vkey" if cp.get("key_source") == "--vkey" else "the bundle's own log.vkey (not independent)"
    lines = [
        f"Checkpoint: {cp.get('origin')} size {cp['size']} root {cp.get('root')}",
        f"  log key {cp.get('key', '?')} from {source}: {signed}",
        f"  witnesses: {cp.get('cosigned', 0)} valid cosignature(s), {cp.get('required', 0)} required"
        f" (keys from {cp.get('witness_source', '?')})",
    ]
    lines += [
        f"    {w['name']} {w['key_id']}: {w['status']}"
        + (f" at {w['timestamp']}" if "timestamp" in w else "")
        for w in cp.get("witnesses", [])
    ]
    return lines


def _case_lines(case: dict[str, Any] | None) -> list[str]:
    if case is None:
        return ["Case: no event of the case could be replayed"]
    lines = [
        f"Case {case['case_number']} ({case['category']}): {case['status']}, {case['version']} events,"
        f" opened {case['opened_at']}" + (f", closed {case['closed_at']}" if case.get("closed_at") else ""),
    ]
    for f in case["footage"]:
        held = f" held by {', '.join(f['held_by'])}" if f["held_by"] else ""
        lines.append(f"  footage {f['footage_id']}: {f['release_status']}{held} sha256 {f['sha256']}")
        lines += [
            f"    derivative {d['derivative_id']} ({d['kind']}) sha256 {d['sha256']}"
            for d in f["derivatives"]
        ]
    for h in case["holds"]:
        state = "active" if h["active"] else f"lifted {h['lifted_at']}"
        lines.append(f"  hold {h['hold_id']} by {h['authority']} placed {h['placed_at']}: {state}")
    for r in case["releases"]:
        what = r["footage_id"] + (f" (derivative {r['derivative_id']})" if r.get("derivative_id") else "")
        lines.append(f"  release of {what} on {r['released_at']} ({r['basis']}) sha256 {r['sha256']}")
    for r in case["referrals"]:
        ack = (
            f"acknowledged {r['acknowledged_at']} by {r['acknowledged_by']}"
            if r["acknowledged_at"]
            else "not acknowledged"
        )
        lines.append(f"  referral {r['referral_id']} to {r['authority']} on {r['made_at']}: {ack}")
    lines.append(f"  evidence accesses recorded: {case['accesses']}")
    return lines


def _timeline_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        mark = "" if r["ok"] else "  <-- finding"
        lines.append(
            f"  {r['seq']!s:>4}  {r['occurred_at'] or '?':27}  {r['type'] or '?':25} {r['actor'] or '?'}"
            f" ({r['role'] or '?'}) key {str(r['signer'] or '?')[:16]}  leaf {r['leaf_index']}{mark}"
        )
    return lines


def render_text(v: BundleVerification) -> str:
    doc = report_json(v)
    m = doc["manifest"]
    root = doc["trust_root"]
    lines = [
        f"EVIDENCE BUNDLE VERIFICATION: {doc['verdict']}"
        + (f" ({len(v.findings)} finding(s))" if v.findings else ""),
        f"Bundle: {v.bundle} sha256 {v.bundle_sha256}",
        f"Ledger: {m['origin']}  case {m['case_id']}  exported {m['created_at']}",
        f"Trust root: {root['key_id']} ({'pinned with --trust-root' if root['pinned'] else 'NOT pinned'})",
        *_checkpoint_lines(v.checkpoint),
        "",
        "Checks:",
        *[
            f"  [{STATUS_MARK.get(s['status'], s['status'])}] {s['step']:>2}. {s['title']}: {s['detail']}"
            for s in doc["steps"]
        ],
    ]
    if doc["findings"]:
        lines += ["", "Findings:"]
        lines += [
            f"  {f['code']} (check {f['step']}) at {_where(f)}: {f['message']}" for f in doc["findings"]
        ]
    lines += [
        "",
        *_case_lines(doc["case"]),
        "",
        "Timeline (seq, time, type, signer):",
        *_timeline_lines(v.timeline),
    ]
    if v.media:
        lines += ["", "Media:"]
        lines += [
            f"  {r['sha256']} {r.get('derivative_id') or r.get('footage_id')}: {r['status']}" for r in v.media
        ]
    if v.caveats:
        lines += ["", "Caveats:", *[f"  - {c}" for c in v.caveats]]
    return "\n".join(lines) + "\n"
