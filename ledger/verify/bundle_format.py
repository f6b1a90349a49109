"""The evidence bundle's layout: the one definition of it, shared by the writer
(``ledger.evidence.bundle``) and the reader (``ledger.verify.bundle_files``), so that the two cannot
drift apart. Public as ``ledger.verify.bundle_format``.

A bundle is one zip file (format ``evidence-ledger-bundle/1``):

    manifest.json            format, origin, case id, created_at, trust root key id, every file's SHA-256/size
    HOW-TO-VERIFY.txt        how to check everything by hand
    envelopes/<n>.json       the DSSE envelope at leaf index n, bytes exactly as stored
    leaves/<n>.json          the exact leaf bytes at index n
    proofs/<n>.json          RFC 6962 inclusion proof of leaf n against checkpoint.txt
    checkpoint.txt           the signed checkpoint note with witness cosignature lines
    log.vkey                 the log's verifier key (a copy: pass --vkey for an independent check)
    witnesses/<name>.vkey    verifier keys of the ledger's witnesses (copies, as log.vkey)
    media/<sha256>           optional: footage and derivatives

Files are named by their SHA-256 in lowercase hex (``manifest.json``'s ``files``, ``media/``).
Standard library only, so that the service writes bundles without loading the verifier.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

BUNDLE_FORMAT = "evidence-ledger-bundle/1"
MANIFEST = "manifest.json"
GUIDE = "HOW-TO-VERIFY.txt"
CHECKPOINT = "checkpoint.txt"
LOG_VKEY = "log.vkey"
ENVELOPES, LEAVES, PROOFS, MEDIA, WITNESSES = "envelopes/", "leaves/", "proofs/", "media/", "witnesses/"
MANIFEST_KEYS = frozenset(
    {
        "format",
        "origin",
        "case_id",
        "created_at",
        "trust_root_key_id",
        "authorities",
        # only when the ledger's disclosure window is not the default (24 h): older bundles, and the
        # bundles of a ledger at the default, carry no such key
        "disclosure_window_seconds",
        "checkpoint_size",
        "case_events",
        "files",
    }
)
MANIFEST_FILE_KEYS = frozenset({"path", "sha256", "size"})  # one entry of the manifest's "files"
INDEXED = re.compile(r"(envelopes|leaves|proofs)/(0|[1-9][0-9]{0,18})\.json")  # what member_path names
HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


def member_path(kind: str, index: int) -> str:
    """The member of leaf ``index`` under ``kind`` (``ENVELOPES``, ``LEAVES`` or ``PROOFS``)."""
    return f"{kind}{index}.json"


def file_sha256(path: Path) -> tuple[str, int]:
    """(SHA-256 in lowercase hex, size) of a file, read in chunks: the bundle itself, or media."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
