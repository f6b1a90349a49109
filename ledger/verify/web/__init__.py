"""The in-browser bundle verifier: one self-contained HTML page (``verify.html``, package data).

It is shipped inside every bundle (``ledger.evidence.bundle``) and served at ``GET /verify``. Its
only script is inline and allowed by its SHA-256 in the page's Content-Security-Policy, which also
forbids every connection (``connect-src 'none'``); :func:`content_security_policy` is the same
policy for the HTTP header. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

PAGE_NAME = "verify.html"
_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)
_META_CSP = re.compile(rb'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')


@cache
def page_bytes() -> bytes:
    """The page, exactly as shipped."""
    return resources.files(__package__).joinpath(PAGE_NAME).read_bytes()


def script_hash(page: bytes | None = None) -> str:
    """The CSP source (``'sha256-…'``) of the page's one inline script."""
    scripts = _SCRIPT.findall(page_bytes() if page is None else page)
    if len(scripts) != 1:
        raise ValueError(f"{PAGE_NAME} must hold exactly one inline script, found {len(scripts)}")
    return "'sha256-" + base64.b64encode(hashlib.sha256(scripts[0]).digest()).decode("ascii") + "'"


def content_security_policy(page: bytes | None = None) -> str:
    """The policy the page declares in its ``<meta>``: also sent as the header of ``/verify``."""
    match = _META_CSP.search(page_bytes() if page is None else page)
    if match is None:
        raise ValueError(f"{PAGE_NAME} declares no Content-Security-Policy")
    return match.group(1).decode("ascii")


def with_script_hash(page: bytes) -> bytes:
    """``page`` with its policy's ``script-src`` set to the hash of its inline script (run
    ``python -m ledger.verify.web`` after editing the script; a test checks it was run)."""
    return re.sub(
        rb"script-src 'sha256-[A-Za-z0-9+/=]*'", b"script-src " + script_hash(page).encode(), page, count=1
    )
