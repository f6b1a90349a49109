"""Export one case as a self-contained evidence bundle (layout: ``ledger.verify.bundle_format``).

The bundle holds every envelope of the case in order, the key-registry envelopes its signers need
(the trust root, the registration of every signer and of the admin keys that registered them,
recursively, and every revocation of those keys), each one's exact leaf bytes and its inclusion proof
against ONE fresh checkpoint (cosigned by the configured witnesses), the verifier keys, a guide for
checking it by hand and, on request, the media files. Everything is read as of that checkpoint, so
a case that grows during the export is exported exactly up to it. Beside them (format 2) every
access-log entry naming the case — each read, download and refusal — up to the newest signed access
checkpoint, with its inclusion proof against that checkpoint; and (format 3) the signed receipt of
every leaf.

Zip members are written in a fixed order with fixed timestamps to a temporary file next to the
destination, fsynced and renamed into place; ``manifest.json`` is written last, listing the SHA-256
and size of every other member as it was written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.context import DEFAULT_DISCLOSURE_WINDOW_SECONDS
from domain.errors import ConflictError, LedgerError, case_not_found
from domain.events import declared
from ledger.durable import fsync_dir
from ledger.envelope.canonical import canonical, format_time
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.evidence.bundle_guide import guide_text
from ledger.evidence.footage import FootageStore
from ledger.log import merkle, note, tlog
from ledger.log.access import StoredAccessEntry
from ledger.log.leaf import parse_leaf
from ledger.log.proof_json import inclusion_proof_json
from ledger.log.timestamping import stored_tokens
from ledger.verify import bundle_format as bf
from ledger.verify import web as verifier_web

if TYPE_CHECKING:

    from ledger.store import Ledger

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_COORDS_PER_QUERY = 400


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    sha256: str
    size: int
    case_id: str
    case_events: int
    entries: int
    checkpoint_size: int
    media: int
    access_entries: int = 0
    timestamps: int = 0


@dataclass(frozen=True)
class Row:
    leaf_index: int
    seq: int
    envelope: bytes
    leaf: bytes


def stream_rows(ledger: Ledger, stream_id: str, size: int) -> list[Row]:
    """The stream's envelopes and leaves with a leaf index below ``size``, in seq order."""
    with ledger.db.read() as tx:
        rows = tx.query(
            "SELECT leaf_index, seq, leaf FROM log_entries WHERE case_id = ? AND leaf_index < ? ORDER BY seq",
            (stream_id, size),
        )
    envelopes = ledger.case_envelopes(stream_id, limit=len(rows)) if rows else []
    result = [
        Row(int(i), int(q), env, bytes(leaf)) for (i, q, leaf), env in zip(rows, envelopes, strict=True)
    ]
    if [r.seq for r in result] != list(range(1, len(result) + 1)):
        raise LedgerError("the stored stream is not contiguous from seq 1", code="STORAGE_INCONSISTENT")
    return result


def _registry_facts(row: Row) -> tuple[str | None, str | None]:
    """(signer, key id named in the body) of a registry envelope; (None, None) if unparseable."""
    try:
        st = parse_envelope(row.envelope).statement
    except LedgerError:
        return None, None
    key = st.body.get("key_id")
    return st.signer, key if isinstance(key, str) else None


def needed_registry(rows: list[Row], signers: set[str]) -> list[Row]:
    """The trust root and every registration or revocation of a needed key, closed over the admin
    keys that signed them. Unparseable registry rows are kept, so that tampering shows."""
    facts = [_registry_facts(r) for r in rows]
    needed = set(signers)
    changed = True
    while changed:
        changed = False
        for signer, key in facts:
            if key in needed and signer is not None and signer not in needed:
                needed.add(signer)
                changed = True
    return [
        r
        for r, (signer, key) in zip(rows, facts, strict=True)
        if r.seq == 1 or signer is None or key in needed
    ]


def _signers(rows: list[Row]) -> set[str]:
    signers = set()
    for row in rows:
        try:
            signers.add(parse_envelope(row.envelope).statement.signer)
        except LedgerError:
            continue
    return signers


def _media_hashes(rows: list[Row]) -> list[str]:
    hashes = set()
    for row in rows:
        try:
            st = parse_envelope(row.envelope).statement
        except LedgerError:
            continue
        rules = declared(st.type)
        media = None if rules is None else rules.media  # the file the event records, if any
        if media is not None and isinstance(st.body.get(media.sha256_field), str):
            hashes.add(st.body[media.sha256_field])
    return sorted(hashes)


def inclusion_proofs(ledger: Ledger, indexes: list[int], size: int) -> dict[int, list[bytes]]:
    """Inclusion proofs for many leaves, reading the tree nodes in a few queries."""
    coords = sorted({c for i in indexes for c in merkle.inclusion_coords(i, size)})
    nodes: dict[tuple[int, int], bytes] = {}
    with ledger.db.read() as tx:
        for start in range(0, len(coords), _COORDS_PER_QUERY):
            nodes.update(tlog.fetch_nodes(tx, coords[start : start + _COORDS_PER_QUERY]))
    return {i: merkle.inclusion_proof(i, size, nodes) for i in indexes}


# --- writing the zip ------------------------------------------------------------------------------


class _ZipWriter:
    def __init__(self, zf: zipfile.ZipFile, when: datetime) -> None:
        self.zf = zf
        self.date_time = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
        self.files: list[dict[str, Any]] = []

    def _info(self, name: str, compress: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = compress
        info.external_attr = 0o644 << 16
        return info

    def add(self, name: str, data: bytes, *, listed: bool = True) -> None:
        self.zf.writestr(self._info(name, zipfile.ZIP_DEFLATED), data)
        if listed:
            self.files.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})

    def add_stream(self, name: str, chunks: Iterable[bytes]) -> None:
        digest, size = hashlib.sha256(), 0
        with self.zf.open(self._info(name, zipfile.ZIP_STORED), "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        self.files.append({"path": name, "sha256": digest.hexdigest(), "size": size})


@dataclass
class _Contents:
    case_id: str
    case_rows: list[Row]
    entries: list[Row]
    checkpoint: tlog.StoredCheckpoint
    proofs: dict[int, list[bytes]]
    log_vkey: str
    witnesses: list[tuple[str, str]]
    media: list[str]
    created_at: datetime
    access: AccessContents
    timestamps: list[bytes] = field(default_factory=list)  # verified RFC 3161 replies over the checkpoint


@dataclass
class AccessContents:
    """The case's access-log entries up to the newest access checkpoint (none without one)."""

    checkpoint: tlog.StoredCheckpoint | None = None
    entries: list[StoredAccessEntry] = field(default_factory=list)
    proofs: dict[int, list[bytes]] = field(default_factory=dict)


_ACCESS_PAGE = 5000


def collect_access(ledger: Ledger, case_id: str) -> AccessContents:
    """Every access entry naming the case below the newest signed access checkpoint, with its proof."""
    log = ledger.access_log
    checkpoint = log.latest_checkpoint()
    if checkpoint is None:
        return AccessContents()
    entries: list[StoredAccessEntry] = []
    while True:
        after = entries[-1].index if entries else -1
        page = log.entries(case_id=case_id, after=after, limit=_ACCESS_PAGE, below=checkpoint.size)
        entries += page
        if len(page) < _ACCESS_PAGE:
            break
    proofs = log.inclusion_proofs([e.index for e in entries], checkpoint.size)
    return AccessContents(checkpoint, entries, proofs)


def _witness_files(ledger: Ledger) -> list[tuple[str, str]]:
    from ledger.log.witnessing import load_witnesses

    files: list[tuple[str, str]] = []
    for n, endpoint in enumerate(sorted(load_witnesses(ledger.data_dir), key=lambda e: e.name)):
        safe = _SAFE_NAME.sub("_", endpoint.name)
        if any(name == f"{bf.WITNESSES}{safe}.vkey" for name, _ in files):
            safe = f"{safe}-{n}"
        files.append((f"{bf.WITNESSES}{safe}.vkey", str(endpoint.vkey) + "\n"))
    return files


class NotCheckpointed(ConflictError):
    """The case has events that no signed checkpoint covers yet: sign one, then export."""

    code = "NOT_CHECKPOINTED"


class NotWitnessed(ConflictError):
    """Production profile: no published checkpoint (cosigned by enough witnesses in other trust
    domains) covers the case's last event yet."""

    code = "NOT_WITNESSED"


def collect(
    ledger: Ledger,
    case_id: str,
    *,
    with_media: bool,
    store: FootageStore | None = None,
    checkpoint_size: int | None = None,
) -> _Contents:
    """Everything the bundle holds, read (never written): the case as of the newest published checkpoint
    (``Ledger.published_checkpoint``: in a production ledger, the newest one cosigned by enough
    witnesses in other trust domains) — or the one of ``checkpoint_size`` when that one is published (the
    checkpoint an export had time-stamped) —, which must cover the case's last event."""
    version, _ = (0, None) if case_id == REGISTRY_CASE_ID else ledger.case_head(case_id)
    if version == 0:
        raise case_not_found(case_id)
    checkpoint = ledger.published_checkpoint()
    if checkpoint_size is not None and checkpoint is not None and checkpoint_size < checkpoint.size:
        chosen = ledger.checkpoint_at(checkpoint_size)
        checkpoint = chosen if ledger.is_published(chosen) else checkpoint
    case_rows = [] if checkpoint is None else stream_rows(ledger, case_id, checkpoint.size)
    if ledger.production and (checkpoint is None or len(case_rows) < version):
        raise NotWitnessed(
            f"no checkpoint covering this case's last event has been cosigned by {ledger.config.min_witnesses}"
            " witnesses in other trust domains yet: export again once the witnesses answered (docs/witness.md;"
            " `evidence-ledger log checkpoints` shows the cosignatures)",
            case_id=case_id,
        )
    if checkpoint is None or len(case_rows) < version:
        raise NotCheckpointed(
            "no signed checkpoint covers this case's last event yet: sign one (`evidence-ledger log "
            "checkpoint`; the service signs one every second) and export again",
            case_id=case_id,
        )
    registry = needed_registry(stream_rows(ledger, REGISTRY_CASE_ID, checkpoint.size), _signers(case_rows))
    entries = sorted(case_rows + registry, key=lambda r: r.leaf_index)
    store = store or FootageStore(ledger.data_dir / "footage")
    media = [sha for sha in _media_hashes(case_rows) if store.exists(sha)] if with_media else []
    return _Contents(
        case_id=case_id,
        case_rows=case_rows,
        entries=entries,
        checkpoint=checkpoint,
        proofs=inclusion_proofs(ledger, [r.leaf_index for r in entries], checkpoint.size),
        log_vkey=str(note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())) + "\n",
        witnesses=_witness_files(ledger),
        media=media,
        created_at=ledger.clock(),
        access=collect_access(ledger, case_id),
        timestamps=[row.token for row, _ in stored_tokens(ledger, checkpoint)],
    )


def _manifest(ledger: Ledger, contents: _Contents, files: list[dict[str, Any]]) -> bytes:
    manifest = {
        "format": bf.BUNDLE_FORMAT,
        "origin": ledger.origin,
        "case_id": contents.case_id,
        "created_at": format_time(contents.created_at),
        "trust_root_key_id": ledger.config.admin_key_id,
        "authorities": list(ledger.domain_config.authorities),
        "checkpoint_size": contents.checkpoint.size,
        "case_events": len(contents.case_rows),
        "access_checkpoint_size": None if contents.access.checkpoint is None else contents.access.checkpoint.size,
        "access_entries": len(contents.access.entries),
        "files": files,
    }
    window = ledger.domain_config.disclosure_window_seconds
    if window != DEFAULT_DISCLOSURE_WINDOW_SECONDS:  # the verifier must judge disclosures by the same window
        manifest["disclosure_window_seconds"] = window
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _members(ledger: Ledger, contents: _Contents) -> Iterator[tuple[str, bytes]]:
    size = contents.checkpoint.size
    example = contents.case_rows[0].leaf_index
    yield (
        bf.GUIDE,
        guide_text(ledger.origin, contents.case_id, size, ledger.config.admin_key_id, example).encode(),
    )
    yield bf.VERIFIER_PAGE, verifier_web.page_bytes()
    yield bf.CHECKPOINT, contents.checkpoint.with_cosignatures()
    yield bf.LOG_VKEY, contents.log_vkey.encode("ascii")
    for n, token in enumerate(contents.timestamps):
        yield bf.timestamp_path(n), token
    for name, text in contents.witnesses:
        yield name, text.encode("utf-8")
    for row in contents.entries:
        yield bf.member_path(bf.ENVELOPES, row.leaf_index), row.envelope
    for row in contents.entries:
        yield bf.member_path(bf.LEAVES, row.leaf_index), row.leaf
    for row in contents.entries:
        proof = inclusion_proof_json(row.leaf_index, contents.proofs[row.leaf_index], tree_size=size)
        yield bf.member_path(bf.PROOFS, row.leaf_index), canonical(proof)
    yield from _receipts(ledger, contents)
    access = contents.access
    if access.checkpoint is not None:
        yield bf.ACCESS_CHECKPOINT, access.checkpoint.note
    for entry in access.entries:
        yield bf.member_path(bf.ACCESS_ENTRIES, entry.index), entry.entry
    for entry in access.entries:
        assert access.checkpoint is not None
        proof = inclusion_proof_json(entry.index, access.proofs[entry.index], tree_size=access.checkpoint.size)
        yield bf.member_path(bf.ACCESS_PROOFS, entry.index), canonical(proof)


def _receipts(ledger: Ledger, contents: _Contents) -> Iterator[tuple[str, bytes]]:
    """(format 3) The signed receipt of every leaf, signed again now: deterministic, so the same bytes as
    the append returned (while ``receipt_max_delay`` is unchanged). Only a leaf that is in the
    checkpoint's tree by its proof gets one: the log key never signs a row read back unchecked."""
    size, root = contents.checkpoint.size, contents.checkpoint.root
    for row in contents.entries:
        leaf_hash = merkle.leaf_hash(row.leaf)
        try:
            leaf = parse_leaf(row.leaf)
            merkle.verify_inclusion(leaf_hash, row.leaf_index, size, contents.proofs[row.leaf_index], root)
        except LedgerError:
            continue  # a tampered row: no receipt (the verifier reports it, and the leaf)
        if leaf.index != row.leaf_index:
            continue
        signed = ledger.signed_receipt(row.leaf_index, leaf_hash, leaf.integrated_at, leaf.envelope_sha256)
        yield bf.receipt_path(row.leaf_index), signed


def _write(
    ledger: Ledger,
    contents: _Contents,
    handle: Any,
    store: FootageStore,
    progress: Callable[[str, int, int], None] | None = None,
) -> None:
    with zipfile.ZipFile(handle, "w", allowZip64=True) as zf:
        writer = _ZipWriter(zf, contents.created_at)
        for name, data in _members(ledger, contents):
            writer.add(name, data)
        total = sum(_stored_size(store, sha) for sha in contents.media) if progress is not None else 0
        done = 0
        for sha in contents.media:
            chunks: Iterable[bytes] = store.iter_chunks(sha)
            if progress is not None:
                chunks = _counted(chunks, done, total, progress)
            writer.add_stream(f"{bf.MEDIA}{sha}", chunks)
            done += _stored_size(store, sha) if progress is not None else 0
        writer.add(bf.MANIFEST, _manifest(ledger, contents, writer.files), listed=False)


def _stored_size(store: FootageStore, sha: str) -> int:
    try:
        return store.path_of(sha).stat().st_size
    except OSError:
        return 0


def _counted(
    chunks: Iterable[bytes], start: int, total: int, progress: Callable[[str, int, int], None]
) -> Iterator[bytes]:
    done = start
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        progress("writing media", done, total)


def export_bundle(
    ledger: Ledger,
    case_id: str,
    out: Path,
    *,
    with_media: bool = False,
    store: FootageStore | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    checkpoint_size: int | None = None,
) -> BundleInfo:
    """Write the case's bundle to ``out`` (atomically: temporary file, fsync, rename); ``progress``
    hears of the media bytes written (``("writing media", done, total)``, after each chunk).

    A read: it signs nothing and asks no witness. The newest published checkpoint must cover the
    case (``NotCheckpointed`` otherwise, ``NotWitnessed`` in a production ledger); callers that want a fresh one sign it first
    (``ledger.log.witnessing.checkpoint_with_witnesses``), and have it time-stamped
    (``ledger.log.timestamping.stamp_checkpoint``): the bundle carries the verified tokens stored
    for its checkpoint (``checkpoint_size``, default the newest published), none when no TSA answered."""
    store = store or FootageStore(ledger.data_dir / "footage")
    contents = collect(ledger, case_id, with_media=with_media, store=store, checkpoint_size=checkpoint_size)
    out = Path(out)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as handle:
            _write(ledger, contents, handle, store, progress)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
    sha, size = bf.file_sha256(out)
    return BundleInfo(
        out,
        sha,
        size,
        case_id,
        len(contents.case_rows),
        len(contents.entries),
        contents.checkpoint.size,
        len(contents.media),
        len(contents.access.entries),
        len(contents.timestamps),
    )


def bundle_bytes(ledger: Ledger, case_id: str, with_media: bool = False) -> bytes:
    """The bundle as bytes (for small bundles; stream ``export_bundle``'s file for media)."""
    with tempfile.TemporaryDirectory(prefix="el-bundle-") as tmp:
        info = export_bundle(ledger, case_id, Path(tmp) / "bundle.zip", with_media=with_media)
        return info.path.read_bytes()
