"""Screenshots of the in-browser verifier (verify.html) for the documentation.

    python -m ops.screenshots --out docs/images

Makes a demo ledger in a temporary directory (SQLite), appends a small case, exports its bundle,
and opens verify.html from file:// in Debian's Chromium (headless, driven by Playwright) at
1280x900. Writes three PNG files to ``--out``:

* ``verify-verified.png``: the bundle with the log key and trust root typed in: VERIFIED;
* ``verify-unpinned.png``: the same bundle without them: UNPINNED;
* ``verify-tampered.png``: a copy with one signature byte flipped (manifest untouched): FAILED,
  with its findings.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import tempfile
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.envelope.canonical import canonical
from ledger.envelope.signing import build_envelope
from ledger.evidence.bundle import export_bundle
from ledger.log import note
from ledger.log.witnessing import checkpoint_with_witnesses
from ledger.store import Ledger
from ops.ledgers import prepare_ledger

ORIGIN = "cambridgema.gov/evidence-ledger"
PAGE = Path(__file__).resolve().parents[1] / "ledger" / "verify" / "web" / "verify.html"
CHROMIUM = os.environ.get("EVIDENCE_LEDGER_TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 900}


def demo_bundle(folder: Path) -> tuple[Path, str, str]:
    """(bundle, log verifier key, trust root key id) of a small demo case."""
    settings, key = prepare_ledger(folder / "data", None, origin=ORIGIN, actor="Det. A. Rivera")
    case_id, start = str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=5)
    bodies = [
        (
            "CaseOpened",
            {
                "case_number": "CPD-2026-0001",
                "category": "property_damage",
                "summary": "Vehicle damaged during a federal operation",
            },
        ),
        (
            "ReportReceived",
            {
                "report_id": "rpt-1",
                "channel": "911_call",
                "received_at": "2026-02-05T17:02:00Z",
                "location": "Central Square (block level)",
                "observed_agency": "ICE",
                "narrative": "Caller saw masked agents break a car window.",
                "reporter": None,
            },
        ),
    ]
    with Ledger(settings) as ledger:
        prev = None
        for seq, (event_type, body) in enumerate(bodies, 1):
            raw = build_envelope(
                origin=ORIGIN,
                case_id=case_id,
                event_type=event_type,
                body=body,
                key=key,
                seq=seq,
                prev=prev,
                occurred_at=start + timedelta(seconds=seq),
            )
            ledger.append([raw])
            prev = hashlib.sha256(raw).hexdigest()
        checkpoint_with_witnesses(ledger)
        out = folder / "CPD-2026-0001.zip"
        export_bundle(ledger, case_id, out)
        vkey = str(note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key()))
        return out, vkey, ledger.config.admin_key_id


def flipped(bundle: Path, out: Path) -> Path:
    """A copy whose last envelope has one signature byte flipped; the manifest is left as it was."""
    with zipfile.ZipFile(bundle) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    last = max((n for n in members if n.startswith("envelopes/")), key=lambda n: int(n[10:-5]))
    envelope = json.loads(members[last])
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[5] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    members[last] = canonical(envelope)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def shoot(page: Any, bundle: Path, pins: dict[str, str], path: Path) -> str:
    page.fill("#trust-root", pins.get("trust_root", ""))
    page.fill("#log-key", pins.get("vkey", ""))
    page.evaluate("document.getElementById('verdict').removeAttribute('data-verdict')")
    page.set_input_files("#bundle", [])
    page.set_input_files("#bundle", str(bundle))
    page.wait_for_selector("#verdict[data-verdict]", state="attached")
    page.evaluate("document.getElementById('result').scrollIntoView()")
    page.screenshot(path=str(path))
    return str(page.get_attribute("#verdict", "data-verdict"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="el-shots-") as tmp:
        bundle, vkey, trust_root = demo_bundle(Path(tmp))
        bad = flipped(bundle, Path(tmp) / "CPD-2026-0001-altered.zip")
        pins = {"vkey": vkey, "trust_root": trust_root}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(PAGE.as_uri())
            page.wait_for_selector("body[data-ready=yes]", state="attached")
            shots = [
                ("verify-verified.png", bundle, pins, "verified"),
                ("verify-unpinned.png", bundle, {}, "unpinned"),
                ("verify-tampered.png", bad, pins, "failed"),
            ]
            for name, path, given, expected in shots:
                verdict = shoot(page, path, given, args.out / name)
                if verdict != expected:
                    raise SystemExit(f"{name}: the page said {verdict}, expected {expected}")
                print(args.out / name)
            browser.close()


if __name__ == "__main__":
    main()
