"""``python -m ledger.verify.web``: regenerate verify.html's tables from the domain's declarations,
inline the vendored Ed25519 fallback (refused unless its files have their pinned SHA-256) and set its
script hash (run it after an edit of the script or of an event type)."""

from __future__ import annotations

from pathlib import Path

from ledger.verify.web import PAGE_NAME, with_domain_tables, with_script_hash, with_vendored

path = Path(__file__).with_name(PAGE_NAME)
page = path.read_bytes()
updated = with_script_hash(with_vendored(with_domain_tables(page)))
if updated != page:
    path.write_bytes(updated)
print(f"{path}: tables, vendored code and script hash up to date")
