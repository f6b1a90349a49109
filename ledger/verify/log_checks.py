"""Pure checks of the Merkle log and its checkpoints (checks 7 and 8), over leaf hashes and notes.

No storage, no clock: give the leaf hashes in index order, the stored tree nodes (if any) and every
checkpoint known from anywhere (the database, files an auditor kept, witnesses). A bundle verifier
can reuse this with its own leaves.

* ``scan_tree`` folds the leaf hashes once (O(log n) memory), keeps the root at every size asked
  for and compares every node it creates with the stored node of the same (level, index).
* ``check_checkpoints`` verifies each note with the log key, compares each root with the root of
  the leaves at its size, and finds equivocation (two roots signed for one size), truncation (a
  stored checkpoint beyond the log) and rollback (a kept or witnessed checkpoint beyond the log).
  Two checkpoints whose roots both equal the roots recomputed from one sequence of leaves are
  consistent by construction (a consistency proof shows exactly that), so consistency between
  consecutive checkpoints is checked through the recomputed roots.
"""

from __future__ import annotations

import base64
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from domain.errors import MalformedInputError, VerificationError
from ledger.log import merkle, note
from ledger.verify.findings import Finding

Coord = tuple[int, int]


@dataclass(frozen=True)
class CheckpointInput:
    """A signed checkpoint note as found somewhere, with where it was found.

    ``size``/``root`` are the storage row's own columns (database rows only): they must agree
    with the signed note. ``external`` marks checkpoints held outside the database (kept by an
    auditor, cosigned by witnesses, the service's rollback-guard file)."""

    note: bytes
    source: str
    size: int | None = None
    root: bytes | None = None
    external: bool = False


@dataclass(frozen=True)
class KnownCheckpoint:
    """A checkpoint whose log signature verified."""

    size: int
    root: bytes
    note: bytes
    source: str
    external: bool
    cosigned_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "source": self.source,
            "note": self.note.decode("utf-8", "replace"),
            "cosigned_by": list(self.cosigned_by),
        }


@dataclass
class TreeScan:
    """What folding the leaves gave: size, roots at the asked sizes, node findings."""

    size: int
    roots: dict[int, bytes] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class CheckpointResult:
    findings: list[Finding] = field(default_factory=list)
    known: list[KnownCheckpoint] = field(default_factory=list)
    witnessed_size: int | None = None


# --- the tree ---------------------------------------------------------------------------------


def scan_tree(
    leaf_hashes: Iterable[bytes], sizes: Collection[int], stored_nodes: Mapping[Coord, bytes] | None = None
) -> TreeScan:
    """Fold the leaf hashes once, in order; keep the root at each of ``sizes`` (O(log n) memory
    besides the stored nodes); compare every created node with the stored one."""
    wanted = set(sizes)
    tree = merkle.CompactRange.empty()
    scan = TreeScan(0)
    bad: list[tuple[int, int, str]] = []
    for leaf in leaf_hashes:
        for level, index, value in tree.append(leaf):
            if stored_nodes is not None:
                stored = stored_nodes.get((level, index))
                if stored != value:
                    bad.append((level, index, "missing" if stored is None else "different"))
        if tree.size in wanted:
            scan.roots[tree.size] = tree.root()
    scan.size = tree.size
    if stored_nodes is not None:
        scan.findings = _node_findings(bad, _extra(stored_nodes, tree.size))
    return scan


def _extra(stored_nodes: Mapping[Coord, bytes], size: int) -> list[Coord]:
    """Stored nodes that no tree of ``size`` leaves has (a perfect node must end within the tree)."""
    return sorted(c for c in stored_nodes if (c[1] + 1) << c[0] > size)


def _node_findings(bad: list[tuple[int, int, str]], extra: list[Coord]) -> list[Finding]:
    """One finding per differing leaf node; parents only where no leaf below them differs."""
    leaves = sorted(index for level, index, _ in bad if level == 0)
    findings = [
        Finding(
            "NODE_MISMATCH",
            7,
            f"stored tree node for leaf {index} is {what}: proofs served from it are wrong",
            leaf_index=index,
            evidence={"level": 0, "index": index},
        )
        for level, index, what in bad
        if level == 0
    ]
    for level, index, what in bad:
        start, end = index << level, (index + 1) << level
        pos = bisect_left(leaves, start)
        if level > 0 and not (pos < len(leaves) and leaves[pos] < end):
            findings.append(
                Finding(
                    "NODE_MISMATCH",
                    7,
                    f"stored tree node (level {level}, index {index}) is {what}",
                    evidence={"level": level, "index": index},
                )
            )
    if extra:
        findings.append(
            Finding(
                "NODE_MISMATCH",
                7,
                f"{len(extra)} stored tree node(s) lie beyond the stored leaves",
                evidence={"first": list(extra[0]), "count": len(extra)},
            )
        )
    return findings


# --- checkpoints ------------------------------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def verify_known(
    item: CheckpointInput,
    log_key: note.VerifierKey,
    *,
    origin: str | None,
    witnesses: Sequence[note.VerifierKey] = (),
) -> KnownCheckpoint:
    """The checkpoint of a note signed by ``log_key``; raises VerificationError / MalformedInputError.

    Cosignatures by listed witnesses must verify (BAD_COSIGNATURE otherwise); others are ignored."""
    verified = note.verify_checkpoint(item.note, log_key, origin=origin)
    cosigned: tuple[str, ...] = ()
    if witnesses:
        cosigned = tuple(
            c.name for c in note.verify_checkpoint(item.note, log_key, witnesses, 0).cosignatures
        )
    cp = verified.checkpoint
    return KnownCheckpoint(cp.size, cp.root, item.note, item.source, item.external, cosigned)


def _finding(code: str, step: int, message: str, **evidence: object) -> Finding:
    return Finding(code, step, message, evidence=dict(evidence))


def _verify_all(
    inputs: Sequence[CheckpointInput],
    log_key: note.VerifierKey,
    origin: str | None,
    witnesses: Sequence[note.VerifierKey],
    result: CheckpointResult,
) -> None:
    for item in inputs:
        where = {"source": item.source, "size": item.size}
        try:
            known = verify_known(item, log_key, origin=origin, witnesses=witnesses)
        except VerificationError as exc:
            if exc.code == "BAD_COSIGNATURE":
                result.findings.append(_finding("BAD_COSIGNATURE", 8, exc.message, **where))
                known = verify_known(item, log_key, origin=origin)
            else:
                result.findings.append(_finding("BAD_CHECKPOINT", 8, f"{exc.code}: {exc.message}", **where))
                continue
        except MalformedInputError as exc:
            result.findings.append(_finding("BAD_CHECKPOINT", 8, f"unreadable note: {exc.message}", **where))
            continue
        if (item.size is not None and item.size != known.size) or (
            item.root is not None and item.root != known.root
        ):
            result.findings.append(
                _finding(
                    "BAD_CHECKPOINT",
                    8,
                    "the stored size/root columns disagree with the signed note",
                    source=item.source,
                    size=item.size,
                    note_size=known.size,
                )
            )
        result.known.append(known)


def _equivocations(
    known: Sequence[KnownCheckpoint], roots: Mapping[int, bytes]
) -> tuple[list[Finding], set[int]]:
    by_size: dict[int, dict[bytes, KnownCheckpoint]] = {}
    for cp in known:
        by_size.setdefault(cp.size, {}).setdefault(cp.root, cp)
    findings, sizes = [], set()
    for size, variants in sorted(by_size.items()):
        if len(variants) < 2:
            continue
        sizes.add(size)
        leaves_root = roots.get(size)
        findings.append(
            _finding(
                "EQUIVOCATION",
                8,
                f"the log key signed {len(variants)} different roots for size {size}",
                size=size,
                leaves_root=None if leaves_root is None else _b64(leaves_root),
                checkpoints=[cp.to_json() for cp in variants.values()],
            )
        )
    return findings, sizes


def _beyond(known: Sequence[KnownCheckpoint], log_size: int, *, external: bool) -> Finding | None:
    ahead = sorted({cp.size for cp in known if cp.external == external and cp.size > log_size})
    if not ahead:
        return None
    largest = ahead[-1]
    source = next(cp.source for cp in known if cp.size == largest and cp.external == external)
    missing = largest - log_size
    if external:
        return _finding(
            "ROLLBACK",
            8,
            f"the database holds {log_size} entries but a checkpoint kept outside it ({source}) "
            f"covers {largest}: {missing} entries are missing",
            size=largest,
            log_size=log_size,
            missing=missing,
            source=source,
        )
    return _finding(
        "TRUNCATED",
        7,
        f"the log holds {log_size} entries but a stored checkpoint covers {largest}: "
        f"{missing} entries are missing",
        size=largest,
        log_size=log_size,
        missing=missing,
        sizes=ahead[:20],
    )


def _root_mismatches(
    known: Sequence[KnownCheckpoint], roots: Mapping[int, bytes], skip: set[int]
) -> list[Finding]:
    """One finding per external checkpoint; the database's mismatches grouped into one."""
    findings: list[Finding] = []
    stored: list[KnownCheckpoint] = []
    for cp in sorted(known, key=lambda c: c.size):
        actual = roots.get(cp.size)
        if actual is None or actual == cp.root or cp.size in skip:
            continue
        if cp.external:
            findings.append(
                _finding(
                    "ROOT_MISMATCH",
                    7,
                    f"the stored leaves do not give the root of the checkpoint of size {cp.size} "
                    f"kept in {cp.source}: the log was rewritten",
                    size=cp.size,
                    source=cp.source,
                    signed_root=_b64(cp.root),
                    leaves_root=_b64(actual),
                )
            )
        else:
            stored.append(cp)
    if stored:
        first = stored[0]
        findings.append(
            _finding(
                "ROOT_MISMATCH",
                7,
                f"the stored leaves do not give the signed root of {len(stored)} stored checkpoint(s), "
                f"first at size {first.size}",
                size=first.size,
                source=first.source,
                signed_root=_b64(first.root),
                leaves_root=_b64(roots[first.size]),
                sizes=[cp.size for cp in stored[:20]],
                count=len(stored),
            )
        )
    return findings


def _witnessed_size(known: Sequence[KnownCheckpoint], required: int) -> int | None:
    sizes = [cp.size for cp in known if len(set(cp.cosigned_by)) >= required]
    return max(sizes) if sizes else None


def check_checkpoints(
    scan: TreeScan,
    inputs: Sequence[CheckpointInput],
    *,
    log_key: note.VerifierKey,
    origin: str | None,
    witnesses: Sequence[note.VerifierKey] = (),
    min_witnesses: int | None = None,
    log_size: int | None = None,
) -> CheckpointResult:
    """Checks 7 and 8 for every checkpoint; ``scan`` must hold the roots at the inputs' sizes.

    ``log_size`` (default: the leaves folded) is the number of entries the log holds: a tree that
    could be rebuilt only up to a missing leaf does not make the later checkpoints "truncated"."""
    size = scan.size if log_size is None else max(log_size, scan.size)
    result = CheckpointResult()
    _verify_all(inputs, log_key, origin, witnesses, result)
    equivocations, skip = _equivocations(result.known, scan.roots)
    result.findings += equivocations
    result.findings += _root_mismatches(result.known, scan.roots, skip)
    for external in (False, True):
        ahead = _beyond(result.known, size, external=external)
        if ahead is not None:
            result.findings.append(ahead)
    if witnesses:
        required = len(witnesses) if min_witnesses is None else min_witnesses
        result.witnessed_size = _witnessed_size(result.known, required)
    return result


def checkpoint_sizes(inputs: Iterable[CheckpointInput]) -> set[int]:
    """Every size the inputs claim (from the note text, unverified): the roots to keep while folding."""
    sizes: set[int] = set()
    for item in inputs:
        if item.size is not None:
            sizes.add(item.size)
        try:
            body, _ = note.open_note(item.note)
            sizes.add(note.parse_checkpoint_body(body).size)
        except MalformedInputError:
            continue
    return sizes
