"""Verify a log published as C2SP tlog-tiles (``audit --tiles``, ``verify --tiles``), with no database.

:func:`tiles_source` reads ``checkpoint`` and ``tile/...`` from a directory or an http(s) URL prefix
(standard library ``urllib``, like ``ledger.verify.log_server``: bounded, no redirects). Nothing read
is trusted: :func:`audit_tiles` checks

* the checkpoint: signed by the pinned log key (and cosigned as the witness policy asks);
* every entry bundle: exactly its width of uint16 length-prefixed entries, each a well-formed leaf
  commitment carrying its own index, each hashing (RFC 6962 leaf hash) to its level-0 tile hash;
* every tile of level L >= 1: each hash is the Merkle tree hash of the full tile below it;
* the root computed from the tiles equals the checkpoint's root.

Each problem is a :class:`ledger.verify.findings.Finding`: ``BAD_CHECKPOINT`` (or the note's own
code), ``MISSING_TILE``, ``BAD_TILE`` (length, framing), ``TILE_MISMATCH`` (an entry or a tile that
does not hash to the hash above it), ``BAD_LEAF``, ``ROOT_MISMATCH``.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import LedgerError, MalformedInputError, NotFoundError, VerificationError
from ledger.log import merkle, note, tiles
from ledger.log.leaf import parse_leaf
from ledger.verify.findings import Finding

TIMEOUT = 30.0
MAX_RESOURCE = 1 << 24  # a full entry bundle of 256 leaves of at most 64 KiB each
CHECK_TILES = 7  # the numbered check (findings.CHECKS): tree roots against the signed checkpoint
CHECK_CHECKPOINT = 8

Progress = Callable[[str, int, int | None], None]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def tiles_source(location: str, *, timeout: float = TIMEOUT) -> tuple[tiles.Fetch, str]:
    """(fetch, description) for a tiled log at an http(s) URL prefix or in a directory."""
    parts = urllib.parse.urlsplit(location)
    if parts.scheme in ("http", "https"):
        if not parts.hostname or parts.query or parts.fragment:
            raise MalformedInputError("--tiles is an http(s) URL prefix or a directory", code="BAD_ARGUMENT")
        return _url_fetch(location.rstrip("/"), timeout), location.rstrip("/")
    directory = Path(location)
    if not directory.is_dir():
        raise MalformedInputError(f"--tiles {location}: not a directory nor an http(s) URL", code="BAD_ARGUMENT")
    return tiles.directory_fetch(directory), str(directory)


def _url_fetch(prefix: str, timeout: float) -> tiles.Fetch:
    opener = urllib.request.build_opener(_NoRedirect())

    def fetch(path: str) -> bytes:
        url = f"{prefix}/{path}"
        try:
            with opener.open(url, timeout=timeout) as answer:
                data: bytes = answer.read(MAX_RESOURCE + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFoundError(f"{url} answered 404", code="NO_TILE", path=path) from None
            raise LedgerError(f"{url} answered HTTP {exc.code}", code="BAD_RESPONSE") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise LedgerError(
                f"cannot reach {url} ({getattr(exc, 'reason', exc)}): check the URL", code="SERVER_UNREACHABLE"
            ) from None
        if len(data) > MAX_RESOURCE:
            raise LedgerError(f"{url} is larger than {MAX_RESOURCE} bytes", code="BAD_RESPONSE")
        return data

    return fetch


@dataclass
class TilesAudit:
    """What ``audit --tiles`` found."""

    source: str
    independent: bool
    size: int | None = None
    root: bytes | None = None
    checkpoint: bytes | None = None
    cosigned_by: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tiles_read: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.findings,
            "source": self.source,
            "independent": self.independent,
            "log_size": self.size,
            "root_hash": None if self.root is None else self.root.hex(),
            "cosigned_by": self.cosigned_by,
            "tiles_read": self.tiles_read,
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
        }


def _finding(code: str, message: str, step: int = CHECK_TILES, leaf: int | None = None, **evidence: Any) -> Finding:
    return Finding(code, step, message, leaf_index=leaf, evidence=evidence)


def audit_tiles(
    fetch: tiles.Fetch,
    log_key: note.VerifierKey,
    *,
    source: str,
    independent: bool = True,
    witnesses: tuple[note.VerifierKey, ...] = (),
    min_witnesses: int | None = None,
    progress: Progress | None = None,
) -> TilesAudit:
    """Check a whole tiled log (see the module). Raises only when the source cannot be read at all
    (SERVER_UNREACHABLE, BAD_RESPONSE) or its checkpoint is missing (NO_TILE)."""
    report = TilesAudit(source=source, independent=independent)
    raw = fetch(tiles.CHECKPOINT)
    report.checkpoint = raw
    try:
        verified = note.verify_checkpoint(raw, log_key, witnesses, min_witnesses)
    except (VerificationError, MalformedInputError) as exc:
        report.findings.append(_finding(exc.code, f"the checkpoint: {exc.message}", CHECK_CHECKPOINT))
        return report
    size, root = verified.checkpoint.size, verified.checkpoint.root
    report.size, report.root = size, root
    report.cosigned_by = sorted(c.name for c in verified.cosignatures)
    _check_tiles(fetch, size, report, progress or (lambda _p, _d, _t: None))
    if not report.findings:
        tree = tiles.TiledTree(fetch, size)
        try:
            computed = tree.root()
        except LedgerError as exc:
            report.findings.append(_finding(exc.code, exc.message))
            return report
        if computed != root:
            report.findings.append(
                _finding("ROOT_MISMATCH", f"the root computed from the tiles is not the checkpoint's (size {size})")
            )
    return report


def _read(fetch: tiles.Fetch, tile: tiles.Tile, report: TilesAudit) -> bytes | None:
    try:
        data = fetch(tile.path)
    except NotFoundError:
        report.findings.append(_finding("MISSING_TILE", f"{tile.path} is missing", path=tile.path))
        return None
    report.tiles_read += 1
    return data


def _check_tiles(fetch: tiles.Fetch, size: int, report: TilesAudit, progress: Progress) -> None:
    """Level 0 against the entry bundles, then each level against the full tiles below it."""
    below: list[bytes] = []  # the Merkle tree hash of each full tile of the level below, in order
    level = 0
    while tiles.level_count(size, level) > 0:
        count = tiles.level_count(size, level)
        here: list[bytes] = []
        tile_count = (count + tiles.WIDTH - 1) // tiles.WIDTH
        for n in range(tile_count):
            tile = tiles.tile_of(level, n * tiles.WIDTH, size)
            progress(f"tiles L{level}", n + 1, tile_count)
            data = _read(fetch, tile, report)
            if data is None:
                return
            try:
                hashes = tiles.parse_hashes(tile, data)
            except MalformedInputError as exc:
                report.findings.append(_finding("BAD_TILE", exc.message, path=tile.path))
                return
            if level == 0:
                if not _check_bundle(fetch, tile, hashes, report):
                    return
            else:
                for i, value in enumerate(hashes):
                    if value != below[n * tiles.WIDTH + i]:
                        report.findings.append(_finding(
                            "TILE_MISMATCH",
                            f"hash {i} of {tile.path} is not the Merkle tree hash of the full tile below it",
                            path=tile.path,
                        ))
                        return
            if tile.full:
                here.append(tiles.subtree_hash(hashes))
        below = here
        level += 1


def _check_bundle(fetch: tiles.Fetch, tile: tiles.Tile, hashes: list[bytes], report: TilesAudit) -> bool:
    bundle = tiles.Tile(None, tile.index, tile.width)
    data = _read(fetch, bundle, report)
    if data is None:
        return False
    try:
        entries = tiles.parse_bundle(bundle, data)
    except MalformedInputError as exc:
        report.findings.append(_finding("BAD_TILE", exc.message, path=bundle.path))
        return False
    ok = True
    for i, entry in enumerate(entries):
        index = tile.index * tiles.WIDTH + i
        if merkle.leaf_hash(entry) != hashes[i]:
            report.findings.append(_finding(
                "TILE_MISMATCH", f"entry {index} of {bundle.path} does not hash to its level-0 tile hash",
                leaf=index, path=bundle.path,
            ))
            return False
        try:
            leaf = parse_leaf(entry)
        except LedgerError as exc:
            report.findings.append(_finding("BAD_LEAF", f"entry {index}: {exc.message}", leaf=index))
            ok = False
            continue
        if leaf.index != index:
            report.findings.append(_finding("BAD_LEAF", f"entry {index} carries index {leaf.index}", leaf=index))
            ok = False
    return ok


def tiles_proofs(fetch: tiles.Fetch, size: int) -> Callable[[int, int], list[bytes]]:
    """A consistency-proof source (``ledger.verify.memory.ProofSource``) computed from the tiles of a
    tree of ``size`` leaves; a size past it is BAD_RESPONSE (the tiles cannot prove it)."""
    tree = tiles.TiledTree(fetch, size)

    def proof(first: int, second: int) -> list[bytes]:
        if not 0 < first <= second <= size:
            raise LedgerError(f"the tiles (size {size}) cannot prove {first} -> {second}", code="BAD_RESPONSE")
        return tree.consistency_proof(first, second)

    return proof


__all__ = ["TilesAudit", "audit_tiles", "tiles_proofs", "tiles_source"]
