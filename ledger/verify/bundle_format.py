"""The evidence bundle's layout: the one definition of it, shared by the writer
(``ledger.evidence.bundle``) and the reader (``ledger.verify.bundle_files``), so that the two cannot
drift apart. Public as ``ledger.verify.bundle_format``.

A bundle is one zip file (format ``evidence-ledger-bundle/3``; versions 1 and 2 are still read):

    manifest.json            format, origin, case id, created_at, trust root key id, every file's SHA-256/size
    HOW-TO-VERIFY.txt        how to check everything by hand
    verify.html              the in-browser verifier (a convenience copy: use a trusted one, see docs)
    envelopes/<n>.json       the DSSE envelope at leaf index n, bytes exactly as stored
    leaves/<n>.json          the exact leaf bytes at index n
    proofs/<n>.json          RFC 6962 inclusion proof of leaf n against checkpoint.txt
    checkpoint.txt           the signed checkpoint note with witness cosignature lines
    log.vkey                 the log's verifier key (a copy: pass --vkey for an independent check)
    witnesses/<name>.vkey    verifier keys of the ledger's witnesses (copies, as log.vkey)
    media/<sha256>           optional: footage and derivatives
    access/checkpoint.txt    (version 2) the signed access checkpoint, origin "<origin>/access"
    access/entries/<n>.json  (version 2) the exact access-log entry n: a read or refusal naming the case
    access/proofs/<n>.json   (version 2) RFC 6962 inclusion proof of access entry n against it
    receipts/<n>.txt         (version 3) the signed receipt of leaf n (``ledger.log.receipt``), signed
                             again at export: the same bytes the append returned (deterministic)
    timestamps/<n>.tsr       (version 3) an RFC 3161 TimeStampResp (DER, as the TSA sent it) over the
                             body of checkpoint.txt (SHA-256 of "<origin>\n<size>\n<root>\n"); n from 0

Version 2 added the ``access/`` members and the manifest keys ``access_checkpoint_size`` (null when
the access log had no checkpoint) and ``access_entries`` (how many). A version 1 bundle has neither.
Version 3 added ``receipts/<n>.txt`` for every leaf n of the bundle and the ``timestamps/`` members
(no manifest key: they are listed in ``files`` like any member; zero time-stamps is normal for a
ledger without TSAs).

Files are named by their SHA-256 in lowercase hex (``manifest.json``'s ``files``, ``media/``).
Standard library only, so that the service writes bundles without loading the verifier.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

BUNDLE_FORMAT_V1 = "evidence-ledger-bundle/1"
BUNDLE_FORMAT_V2 = "evidence-ledger-bundle/2"
BUNDLE_FORMAT = "evidence-ledger-bundle/3"  # what the exporter writes
BUNDLE_FORMATS = (BUNDLE_FORMAT_V1, BUNDLE_FORMAT_V2, BUNDLE_FORMAT)  # what the verifier reads
MANIFEST = "manifest.json"
GUIDE = "HOW-TO-VERIFY.txt"
VERIFIER_PAGE = "verify.html"  # listed in the manifest like the guide; optional (older bundles lack it)
CHECKPOINT = "checkpoint.txt"
LOG_VKEY = "log.vkey"
ENVELOPES, LEAVES, PROOFS, MEDIA, WITNESSES = "envelopes/", "leaves/", "proofs/", "media/", "witnesses/"
MANIFEST_KEYS_V1 = frozenset(
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
MANIFEST_KEYS = MANIFEST_KEYS_V1 | {"access_checkpoint_size", "access_entries"}
MANIFEST_KEYS_V3 = MANIFEST_KEYS  # version 3 adds members, no manifest key
MANIFEST_KEYS_BY_FORMAT = {
    BUNDLE_FORMAT_V1: MANIFEST_KEYS_V1, BUNDLE_FORMAT_V2: MANIFEST_KEYS, BUNDLE_FORMAT: MANIFEST_KEYS_V3,
}
#: the formats that carry ``receipts/<n>.txt``
RECEIPT_FORMATS = frozenset({BUNDLE_FORMAT})
TIMESTAMPS = "timestamps/"
TIMESTAMP_MEMBER = re.compile(r"timestamps/(0|[1-9][0-9]{0,3})\.tsr")
MAX_TIMESTAMPS = 64  # members read; a bundle with more is a finding
ACCESS_CHECKPOINT = "access/checkpoint.txt"
ACCESS_ENTRIES, ACCESS_PROOFS = "access/entries/", "access/proofs/"
ACCESS_INDEXED = re.compile(r"access/(entries|proofs)/(0|[1-9][0-9]{0,18})\.json")
MANIFEST_FILE_KEYS = frozenset({"path", "sha256", "size"})  # one entry of the manifest's "files"
RECEIPTS = "receipts/"
RECEIPT_INDEXED = re.compile(r"receipts/(0|[1-9][0-9]{0,18})\.txt")
INDEXED = re.compile(r"(envelopes|leaves|proofs)/(0|[1-9][0-9]{0,18})\.json")  # what member_path names
HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


def member_path(kind: str, index: int) -> str:
    """The member of leaf ``index`` under ``kind`` (``ENVELOPES``, ``LEAVES``, ``PROOFS``,
    ``ACCESS_ENTRIES`` or ``ACCESS_PROOFS``)."""
    return f"{kind}{index}.json"


def receipt_path(index: int) -> str:
    """The member holding the signed receipt of leaf ``index`` (format 3)."""
    return f"{RECEIPTS}{index}.txt"


def timestamp_path(n: int) -> str:
    """The ``n``-th time-stamp token member (version 3)."""
    return f"{TIMESTAMPS}{n}.tsr"


def file_sha256(path: Path, advance: Callable[[int], None] | None = None) -> tuple[str, int]:
    """(SHA-256 in lowercase hex, size) of a file, read in chunks: the bundle itself, or media;
    ``advance(n)`` is called after each chunk of ``n`` bytes (a progress bar)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest(), size
