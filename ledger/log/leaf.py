"""The log leaf: a small public commitment to one stored envelope (docs/formats.md §6).

Importable without any database driver: the offline verifier uses it to rebuild leaves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import MalformedInputError
from ledger.envelope.canonical import canonical, parse_canonical, parse_time

LEAF_VERSION = 1
LEAF_KEYS = frozenset({"envelope_sha256", "index", "integrated_at", "v"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def leaf_bytes(envelope_sha256: str, index: int, integrated_at: str) -> bytes:
    return canonical(
        {
            "envelope_sha256": envelope_sha256,
            "index": index,
            "integrated_at": integrated_at,
            "v": LEAF_VERSION,
        }
    )


@dataclass(frozen=True)
class Leaf:
    envelope_sha256: str
    index: int
    integrated_at: str


def parse_leaf(raw: bytes) -> Leaf:
    """Strictly parse stored leaf bytes (canonical JSON of exactly the four fields, version 1)."""
    data = parse_canonical(raw, what="leaf")
    if not isinstance(data, dict) or set(data) != LEAF_KEYS:
        raise MalformedInputError(
            "leaf must hold exactly envelope_sha256, index, integrated_at, v", code="BAD_LEAF"
        )
    digest, index, when, version = data["envelope_sha256"], data["index"], data["integrated_at"], data["v"]
    if version != LEAF_VERSION or type(version) is not int:
        raise MalformedInputError(f"leaf version must be {LEAF_VERSION}", code="BAD_LEAF")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise MalformedInputError("leaf envelope_sha256 must be 64 lowercase hex", code="BAD_LEAF")
    if type(index) is not int or index < 0:
        raise MalformedInputError("leaf index must be an integer >= 0", code="BAD_LEAF")
    parse_time(when, field="integrated_at")
    return Leaf(digest, index, when)
