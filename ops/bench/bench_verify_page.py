"""The in-browser verifier's speed: verify.html checking an N-event bundle in Debian's Chromium, beside
what that browser's own WebCrypto can do and beside `evidence-ledger verify` on the same file.

    python -m ops.bench.bench_verify_page [--events 1000] [--runs 5]

Builds the same case as ``bench_verify`` (N signed events on a throwaway SQLite ledger), exports its
bundle, opens ``verify.html`` from disk in headless Chromium (``/usr/bin/chromium``, closed network)
and times, R times, from choosing the file to the verdict. Baselines measured in the same run:

* the bare rate of WebCrypto Ed25519 verification of the very same DSSE messages in the same page
  (keys imported and messages decoded beforehand, only ``crypto.subtle.verify`` timed, all
  verifications in flight at once, so the browser may use every thread it has): what the page
  could reach if signatures were all it did;
* ``verify_bundle`` with one process (what `evidence-ledger verify --workers 1` does).

The page needs more than signatures (zip, SHA-256 of every file, canonical JSON, the rules,
proofs), so its time over the bare WebCrypto time says how much of it is the page's own work.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ledger.log import note
from ledger.verify import VerifyOptions, verify_bundle
from ledger.verify.web import page_bytes
from ops.bench.bench_verify import bundle_signatures, exported_case
from ops.bench.common import bench_ledger

CHROMIUM = "/usr/bin/chromium"
CLOSED_NETWORK = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

#: runs in the verifier page itself: the same key import and verify calls, nothing else
BARE_WEBCRYPTO = """async ([items]) => {
  const raw = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const keys = new Map();
  const prepared = [];
  for (const [key, sig, msg] of items) {
    if (!keys.has(key)) {
      keys.set(key, await crypto.subtle.importKey('raw', raw(key), {name: 'Ed25519'}, false, ['verify']));
    }
    prepared.push([keys.get(key), raw(sig), raw(msg)]);
  }
  const started = performance.now();
  const results = await Promise.all(prepared.map(([k, s, m]) => crypto.subtle.verify({name: 'Ed25519'}, k, s, m)));
  const ms = performance.now() - started;
  if (!results.every(Boolean)) throw new Error('a signature did not verify');
  return ms;
}"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def page_runs(page: Any, bundle: Path, pins: dict[str, str], runs: int) -> list[float]:
    page.fill("#trust-root", pins["trust_root"])
    page.fill("#log-key", pins["vkey"])
    timings = []
    for _ in range(runs + 1):  # the first run warms the page up and is not counted
        page.evaluate("document.getElementById('verdict').removeAttribute('data-verdict')")
        page.set_input_files("#bundle", [])
        started = time.perf_counter()
        page.set_input_files("#bundle", str(bundle))
        page.wait_for_selector("#verdict[data-verdict]", state="attached", timeout=600_000)
        timings.append(time.perf_counter() - started)
        verdict = page.get_attribute("#verdict", "data-verdict")
        if verdict != "verified":
            raise RuntimeError(f"the page said {verdict} for a clean bundle")
    return timings[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with bench_ledger("sqlite") as bench, tempfile.TemporaryDirectory(prefix="el-bench-page-") as tmp:
        bundle = Path(tmp) / "case.zip"
        exported_case(bench, args.events, bundle)
        pins = {
            "trust_root": bench.ledger.config.admin_key_id,
            "vkey": str(note.make_verifier_key(bench.ledger.config.log_key_name, bench.ledger.log_key.public_key())),
        }
        bench.ledger.close()
        size = bundle.stat().st_size
        page_file = Path(tmp) / "verify.html"
        page_file.write_bytes(page_bytes())
        items = [
            [_b64(public.public_bytes_raw()), _b64(sig), _b64(message)]
            for public, sig, message in bundle_signatures(bundle)
        ]
        cli = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = verify_bundle(bundle, VerifyOptions(workers=1, trust_root=pins["trust_root"]))
            cli.append(time.perf_counter() - started)
            assert result.verified, [str(f) for f in result.findings]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CLOSED_NETWORK)
            try:
                page = browser.new_page()
                page.goto(page_file.as_uri())
                page.wait_for_selector("body[data-ready=yes]", state="attached")
                timings = page_runs(page, bundle, pins, args.runs)
                bare_ms = [page.evaluate(BARE_WEBCRYPTO, [items]) for _ in range(args.runs)]
                version = browser.version
            finally:
                browser.close()
    seconds, bare = statistics.median(timings), statistics.median(bare_ms) / 1000
    print(f"bundle: {args.events} case events, {len(items)} signatures, {size:,} bytes; Chromium {version}")
    print(f"verify.html (file://, choose file -> verdict): median {seconds:.3f} s over {args.runs} runs"
          f" (min {min(timings):.3f} s), {len(items) / seconds:,.0f} signed entries/s")
    print(f"baseline, bare WebCrypto Ed25519 verify of the same {len(items)} messages in the same page:"
          f" median {bare:.3f} s, {len(items) / bare:,.0f}/s; the page reaches {bare / seconds:.0%} of it")
    print(f"beside it, verify_bundle with one process: median {statistics.median(cli):.3f} s;"
          f" the page takes {seconds / statistics.median(cli):.1f}x as long")


if __name__ == "__main__":
    main()
