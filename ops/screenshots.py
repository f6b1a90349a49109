"""Screenshots of the service's web pages for the documentation (``docs/images/``).

    PYTHONPATH=. .venv/bin/python ops/screenshots.py [--out docs/images]

Builds a demo ledger in a temporary directory (a few cases over several months, some footage
released, some held, some awaiting a decision), runs a real ``evidence-ledger serve`` on it on
loopback, and saves PNGs taken with Debian's Chromium through Playwright on a closed network (no host
but loopback resolves, so a page that needed a CDN would show it). Each page's part is a function of
its own: :func:`public_pages` (``public.png``, ``public-phone.png``), :func:`api_docs`
(``docs.png``, ``redoc.png``) and :func:`verifier_page` (``verify-verified.png``, ``verify-unpinned.png``,
``verify-tampered.png``: the page served at ``/verify`` checking a bundle of the demo ledger with
and without the keys, and a copy with one signature byte flipped).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.bootstrap import init_data_dir, register_key
from ledger.envelope.canonical import canonical
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import raw_public_key
from ledger.evidence.bundle import export_bundle
from ledger.log import note
from ledger.settings import Settings, key_path
from ledger.store import Ledger
from ops.procs import Server, serving

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("EVIDENCE_LEDGER_TEST_CHROMIUM", "/usr/bin/chromium"))
CLOSED_NETWORK = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
ORIGIN = "cambridgema.gov/evidence-ledger"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
CHANNELS = ("city website", "records office", "press briefing")


class DemoClock:
    """A clock the demo moves forward by hand, so the demo's events spread over several months."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def jump(self, days: float) -> None:
        self.now += timedelta(days=days)


def _digest(n: int) -> str:
    return hashlib.sha256(f"demo footage {n}".encode()).hexdigest()


def demo_ledger(data_dir: Path, *, start: datetime | None = None) -> None:
    """Initialise ``data_dir`` with a small Cambridge history starting at ``start`` (default: eight
    months ago): each month a case with three captures, one released, one held, one awaiting."""
    clock = DemoClock(start or (datetime.now(UTC) - timedelta(days=240)).replace(microsecond=0))
    settings = Settings(data_dir=data_dir)
    init_data_dir(data_dir, ORIGIN, settings, now=clock())
    investigator, supervisor = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with Ledger(settings, clock=clock) as ledger:
        admin = key_path(data_dir, "admin")
        register_key(ledger, admin, raw_public_key(investigator), actor="Det. A. Rivera", role="investigator",
                     authority=None)
        register_key(ledger, admin, raw_public_key(supervisor), actor="Sgt. B. Chen", role="supervisor",
                     authority=None)
        n = 0
        for month in range(7):
            case_id = str(uuid.uuid4())
            ledger.sign_and_append(investigator, case_id, "CaseOpened", {
                "case_number": f"CPD-2026-{month + 1:04d}", "category": "property_damage",
                "summary": "Vehicle damaged during a federal operation"})
            for item in range(3):
                n += 1
                at = clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
                ledger.sign_and_append(investigator, case_id, "FootageCaptured", {
                    "footage_id": f"ftg-{item + 1}", "source": "body_worn_camera", "device_id": "BWC-0042",
                    "recorded_from": at, "recorded_to": at, "sha256": _digest(n), "size_bytes": 1000 + n,
                    "media_type": "video/mp4", "depicts": ["property_damage_by_federal_officials"],
                    "custodian": "CPD Evidence Unit", "stored": False})
            ledger.sign_and_append(investigator, case_id, "InvestigationHoldPlaced", {
                "hold_id": "hold-1", "scope": ["ftg-2"], "authority": "middlesex_da",
                "reason": "Active DA investigation"})
            clock.jump(days=3 + month)
            ledger.sign_and_append(supervisor, case_id, "FootageReleased", {
                "footage_id": "ftg-1", "sha256": _digest(n - 2), "basis": "executive_order",
                "channel": CHANNELS[month % len(CHANNELS)],
                "url": f"https://www.cambridgema.gov/police/releases/{month + 1}"})
            if month % 2 == 0:  # a second release of the month: the third item, on request
                ledger.sign_and_append(supervisor, case_id, "FootageReleased", {
                    "footage_id": "ftg-3", "sha256": _digest(n), "basis": "public_records_request",
                    "channel": "records office"})
            clock.jump(days=30 - 3 - month)


@contextmanager
def demo_server(work: Path) -> Iterator[Server]:
    """A demo ledger in ``work`` and ``evidence-ledger serve`` on it (this checkout's code)."""
    data_dir = work / "data"
    demo_ledger(data_dir)
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("EVIDENCE_LEDGER_DATABASE_URL", None)
    with serving(env, work / "server.log") as server:
        yield server


def _shoot(browser: Any, url: str, out: Path, *, viewport: dict[str, int], full_page: bool = True,
           wait_for: str | None = None, **context_options: Any) -> Path:
    context = browser.new_context(viewport=viewport, **context_options)
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "blob:http://127.0.0.1", "data:")) else None)
        page.goto(url)
        if wait_for:
            page.wait_for_selector(wait_for, timeout=60_000)
        page.screenshot(path=str(out), full_page=full_page)
        if outside:
            raise RuntimeError(f"{url} asked for something outside loopback: {outside}")
    finally:
        context.close()
    return out


def public_pages(browser: Any, server_url: str, out_dir: Path) -> list[Path]:
    """``/public`` on a desktop (``public.png``) and at 375 px (``public-phone.png``), JavaScript off."""
    return [
        _shoot(browser, f"{server_url}/public", out_dir / "public.png", viewport=DESKTOP,
               java_script_enabled=False),
        _shoot(browser, f"{server_url}/public", out_dir / "public-phone.png", viewport=PHONE,
               java_script_enabled=False, is_mobile=True),
    ]


def api_docs(browser: Any, server_url: str, out_dir: Path) -> list[Path]:
    """Swagger UI at ``/docs`` (``docs.png``) and ReDoc at ``/redoc`` (``redoc.png``): the first screenful of
    each, every operation listed below it."""
    return [
        _shoot(browser, f"{server_url}/docs", out_dir / "docs.png", viewport=DESKTOP, full_page=False,
               wait_for=".opblock"),
        _shoot(browser, f"{server_url}/redoc", out_dir / "redoc.png", viewport=DESKTOP, full_page=False,
               wait_for="[data-section-id*='operation/']"),
    ]


def demo_bundle(work: Path) -> tuple[Path, dict[str, str]]:
    """(bundle of one case of a demo ledger of its own, the keys to pin: log key and trust root)."""
    data_dir = work / "bundle-data"
    demo_ledger(data_dir)
    with Ledger(Settings(data_dir=data_dir)) as ledger:
        case_id = next(entry.case_id for entry in ledger.iter_entries() if entry.case_id != REGISTRY_CASE_ID)
        ledger.checkpoint()
        bundle = export_bundle(ledger, case_id, work / "CPD-2026-0001.zip").path
        vkey = str(note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key()))
        return bundle, {"vkey": vkey, "trust_root": ledger.config.admin_key_id}


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


def verifier_page(browser: Any, server_url: str, out_dir: Path, work: Path) -> list[Path]:
    """``/verify`` checking a demo bundle: with the keys (VERIFIED), without (UNPINNED), and a copy with one
    signature byte flipped (FAILED, with its findings)."""
    bundle, pins = demo_bundle(work)
    bad = flipped(bundle, work / "CPD-2026-0001-altered.zip")
    context = browser.new_context(viewport=DESKTOP)
    saved = []
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "blob:http://127.0.0.1", "data:")) else None)
        page.goto(f"{server_url}/verify")
        page.wait_for_selector("body[data-ready=yes]", state="attached")
        for name, path, given, expected in (
            ("verify-verified.png", bundle, pins, "verified"),
            ("verify-unpinned.png", bundle, {}, "unpinned"),
            ("verify-tampered.png", bad, pins, "failed"),
        ):
            page.fill("#trust-root", given.get("trust_root", ""))
            page.fill("#log-key", given.get("vkey", ""))
            page.evaluate("document.getElementById('verdict').removeAttribute('data-verdict')")
            page.set_input_files("#bundle", [])
            page.set_input_files("#bundle", str(path))
            page.wait_for_selector("#verdict[data-verdict]", state="attached", timeout=60_000)
            verdict = page.get_attribute("#verdict", "data-verdict")
            if verdict != expected:
                raise RuntimeError(f"{name}: the page said {verdict}, expected {expected}")
            page.evaluate("document.getElementById('result').scrollIntoView()")
            page.screenshot(path=str(out_dir / name))
            saved.append(out_dir / name)
        if outside:
            raise RuntimeError(f"/verify asked for something outside loopback: {outside}")
    finally:
        context.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 3
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, demo_server(Path(work)) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CLOSED_NETWORK)
        try:
            saved = [
                *public_pages(browser, server.url, args.out),
                *api_docs(browser, server.url, args.out),
                *verifier_page(browser, server.url, args.out, Path(work)),
            ]
        finally:
            browser.close()
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
