"""``python -m ledger.verify.web``: set verify.html's script hash after an edit of its script."""

from __future__ import annotations

from pathlib import Path

from ledger.verify.web import PAGE_NAME, with_script_hash

path = Path(__file__).with_name(PAGE_NAME)
page = path.read_bytes()
updated = with_script_hash(page)
if updated != page:
    path.write_bytes(updated)
print(f"{path}: script hash up to date")
