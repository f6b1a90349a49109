"""Reports of a bundle verification: a JSON document for machines and plain text for people
(``report_html`` renders the court-readable HTML page from the same JSON document).

Reports show types, ids, hashes, times, actors and roles only: never the free text of events
(narratives, summaries, reasons, notes), which stays in the envelopes as evidence.
"""

from __future__ import annotations

from typing import Any

from domain.events import media_id_fields
from ledger.verify.bundle import BundleVerification
from ledger.verify.bundle_model import EXIT_CODES, FAILED, PIN_FILE, UNPINNED, VERIFIED

REPORT_FORMAT = "evidence-ledger-verification/2"  # 2: verdict verified|unpinned|failed, pins
STATUS_MARK = {"passed": "PASS", "failed": "FAIL", "not applicable": "n/a ", "not run": "skip"}
VERDICT_TEXT = {VERIFIED: "VERIFIED", UNPINNED: "UNPINNED", FAILED: "FAILED"}
PIN_NAMES = {"--vkey": "the log verifier key (--vkey)", "--trust-root": "the trust root (--trust-root)"}


def verdict(v: BundleVerification) -> str:
    """The verdict as shown to people: VERIFIED, UNPINNED or FAILED."""
    return VERDICT_TEXT[v.verdict]


def exit_code(v: BundleVerification, allow_unpinned: bool = False) -> int:
    """0 verified, 1 findings, 4 unpinned (0 with ``allow_unpinned``; the verdict stays unpinned)."""
    return 0 if v.verdict == UNPINNED and allow_unpinned else EXIT_CODES[v.verdict]


def unpinned_message(v: BundleVerification) -> str:
    """What was not pinned and how to pin it (empty when nothing is missing)."""
    missing = v.missing_pins
    if not missing:
        return ""
    origin = v.manifest.origin or "ORIGIN"
    return (
        f"not pinned: {' and '.join(PIN_NAMES[m] for m in missing)}, so the check is not independent of "
        f"the bundle. Give {' and '.join(missing)} with what the City published, or pin both once: "
        f"evidence-ledger trust pin --origin {origin} --vkey LOG_KEY --trust-root KEY_ID"
    )


def media_ref(row: dict[str, Any]) -> Any:
    """The id a media row names its file by (footage_id, derivative_id, …: see ``Media.id_field``)."""
    return next((row[name] for name in media_id_fields() if row.get(name)), None)


def _source(source: str | None, pin_file: str | None) -> str | None:
    return f"pin file {pin_file}" if source == PIN_FILE and pin_file else source


def report_json(v: BundleVerification, *, allow_unpinned: bool = False) -> dict[str, Any]:
    """The machine-readable report. ``verdict`` is ``verified``, ``unpinned`` or ``failed``;
    ``verified`` is true only for ``verified``; ``exit_code`` is the command's exit code."""
    m = v.manifest
    return {
        "report_format": REPORT_FORMAT,
        "verdict": v.verdict,
        "verified": v.verdict == VERIFIED,
        "exit_code": exit_code(v, allow_unpinned),
        "pins": {
            "log_key": {"pinned": v.log_key_pinned, "source": _source(v.log_key_source, v.pin_file)},
            "trust_root": {"pinned": v.trust_root_pinned, "source": _source(v.trust_root_source, v.pin_file)},
            "missing": v.missing_pins,
            "pin_file": v.pin_file,
            "allow_unpinned": allow_unpinned,
            "message": unpinned_message(v) or None,
        },
        "bundle": {"file": v.bundle, "sha256": v.bundle_sha256},
        "manifest": {
            "origin": m.origin,
            "case_id": m.case_id,
            "created_at": m.created_at,
            "trust_root_key_id": m.trust_root_key_id,
            "checkpoint_size": m.checkpoint_size,
            "case_events": m.case_events,
            "files": len(m.files),
            "format": m.format,
            "access_checkpoint_size": m.access_checkpoint_size,
            "access_entries": m.access_entries,
        },
        "trust_root": {
            "key_id": v.trust_root,
            "pinned": v.trust_root_pinned,
            "source": _source(v.trust_root_source, v.pin_file),
        },
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
        "access": {"checkpoint": v.access_checkpoint, "entries": v.access},
        "caveats": v.caveats,
    }


def _where(finding: dict[str, Any]) -> str:
    parts = [f"{k} {finding[k]}" for k in ("leaf_index", "case_id", "seq") if finding.get(k) is not None]
    path = (finding.get("evidence") or {}).get("path")
    if path:
        parts.append(f"file {path}")
    return ", ".join(parts) or "bundle"


def key_source_text(source: str | None, pin_file: str | None) -> str:
    """Where the log key came from, for people."""
    if source == "--vkey":
        return "--vkey"
    if source == PIN_FILE:
        return f"the pin file {pin_file}"
    return "the bundle's own log.vkey (not independent)"


def _checkpoint_lines(cp: dict[str, Any], pin_file: str | None) -> list[str]:
    if "size" not in cp:
        return ["Checkpoint: none usable"]
    signed = "signature valid" if cp.get("signature_valid") else "signature NOT valid"
    source = key_source_text(cp.get("key_source"), pin_file)
    lines = [
        f"Checkpoint: {cp.get('origin')} size {cp['size']} root {cp.get('root')}",
        f"  log key {cp.get('key', '?')} from {source}: {signed}",
        f"  witnesses: {cp.get('cosigned', 0)} valid cosignature(s), {cp.get('required', 0)} required"
        f" (keys from {_source(cp.get('witness_source'), pin_file) or '?'})",
    ]
    lines += [
        f"    {w['name']} {w['key_id']}: {w['status']}"
        + (f" at {w['timestamp']}" if "timestamp" in w else "")
        for w in cp.get("witnesses", [])
    ]
    remembered = cp.get("remembered")
    if remembered is not None:
        lines.append(f"  remembered checkpoint: {remembered['status']}: {remembered['detail']}")
    return lines + _timestamp_lines(cp.get("timestamps") or {})


def _timestamp_lines(section: dict[str, Any]) -> list[str]:
    tokens = section.get("tokens") or []
    if not tokens and not section.get("checked"):
        return []
    if section.get("gen_time"):
        head = f"  trusted time: the checkpoint existed by {section['gen_time']} (RFC 3161, verified)"
    elif section.get("checked"):
        head = "  trusted time: NO verified time-stamp"
    else:
        head = "  trusted time: not checked (give --tsa-cert with the TSA's CA certificate)"
    rows = [
        f"    {t['path']}: {t['status']}"
        + (f" by {t['tsa']}" if t.get("tsa") else "")
        + (f" at {t['gen_time']}" + ("" if t["status"] == "verified" else " (claimed)") if t.get("gen_time") else "")
        for t in tokens
    ]
    return [head, *rows]


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


def _access_lines(v: BundleVerification) -> list[str]:
    """The case's access entries (identifiers only: entries hold nothing else)."""
    cp = v.access_checkpoint
    if "size" not in cp:
        head = "Access log: no usable access checkpoint"
    else:
        signed = "signature valid" if cp.get("signature_valid") else "signature NOT valid"
        head = f"Access log: checkpoint {cp.get('origin')} size {cp['size']} root {cp.get('root')}: {signed}"
    lines = [head, f"  {len(v.access)} access entries of this case (index, time, action, outcome, who):"]
    for r in v.access:
        if "action" not in r:
            lines.append(f"  {r['index']!s:>6}  unreadable entry  <-- finding")
            continue
        outcome = r["outcome"] + (f" {r['code']}" if r.get("code") else "")
        item = f" item {r['item']}" if r.get("item") else ""
        token = f" token {r['token_id']}" if r.get("token_id") else ""
        mark = "" if r["ok"] else "  <-- finding"
        lines.append(
            f"  {r['index']!s:>6}  {r['recorded_at']:27}  {r['action']:18} {outcome:28} {r['actor']}"
            f" ({r['role'] or '-'}){token}{item}{mark}"
        )
    return lines


def _pin_text(pinned: bool, source: str | None, pin_file: object, option: str, unpinned: str) -> str:
    if not pinned:
        return unpinned
    return f"pinned by the pin file {pin_file}" if source == PIN_FILE else f"pinned with {option}"


def log_key_text(v: BundleVerification) -> str:
    unpinned = "NOT pinned (the bundle's own log.vkey was used)"
    return _pin_text(v.log_key_pinned, v.log_key_source, v.pin_file, "--vkey", unpinned)


def trust_root_text(v: BundleVerification) -> str:
    return _pin_text(v.trust_root_pinned, v.trust_root_source, v.pin_file, "--trust-root", "NOT pinned")


def _verdict_lines(v: BundleVerification, allow_unpinned: bool) -> list[str]:
    lines = [
        f"EVIDENCE BUNDLE VERIFICATION: {verdict(v)}"
        + (f" ({len(v.findings)} finding(s))" if v.findings else "")
    ]
    if v.verdict == UNPINNED:
        lines.append(f"  No finding, but {unpinned_message(v)}")
        if allow_unpinned:
            lines.append("  (--allow-unpinned: exit code 0; the verdict stays UNPINNED)")
    return lines


def render_text(v: BundleVerification, *, allow_unpinned: bool = False) -> str:
    doc = report_json(v, allow_unpinned=allow_unpinned)
    m = doc["manifest"]
    root = doc["trust_root"]
    lines = [
        *_verdict_lines(v, allow_unpinned),
        f"Bundle: {v.bundle} sha256 {v.bundle_sha256}",
        f"Ledger: {m['origin']}  case {m['case_id']}  exported {m['created_at']}",
        f"Trust root: {root['key_id']} ({trust_root_text(v)})",
        *_checkpoint_lines(v.checkpoint, v.pin_file),
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
    if v.manifest.has_access_log:
        lines += ["", *_access_lines(v)]
    if v.media:
        lines += ["", "Media:"]
        lines += [f"  {r['sha256']} {media_ref(r)}: {r['status']}" for r in v.media]
    if v.caveats:
        lines += ["", "Caveats:", *[f"  - {c}" for c in v.caveats]]
    return "\n".join(lines) + "\n"
