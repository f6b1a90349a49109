"""Concurrent writers on both backends: threads racing on one case, OS processes appending at once.

The append path serialises writers (PostgreSQL ``LOCK TABLE … EXCLUSIVE`` / SQLite ``BEGIN IMMEDIATE``),
so whatever the interleaving: one winner per (case, seq), losers get ``SEQ_CONFLICT``, case versions
stay contiguous, leaf indexes are exactly 0..N-1, and the stored tree matches a from-scratch root.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import queue as queue_mod
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from domain.errors import ConflictError, LedgerError
from ledger.append import Outcome, Receipt
from ledger.envelope.dsse import parse_envelope
from ledger.envelope.signing import build_envelope
from ledger.log import merkle, tlog
from ledger.store import Ledger
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id

THREADS = 6
ROUNDS = 5
PROCESSES = 4
CASES_PER_PROCESS = 4
EVENTS_PER_CASE = 6
CHILD_TIMEOUT = 90.0


# -- helpers -------------------------------------------------------------------------------------


def _race(ledgers: Sequence[Ledger], batches: Sequence[list[bytes]]) -> list[list[Outcome]]:
    """Append each batch from its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(batches))
    results: list[list[Outcome] | BaseException | None] = [None] * len(batches)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = ledgers[i % len(ledgers)].append(batches[i])
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "an append hung"
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, list)]


def _log_rows(ledger: Ledger) -> list[tuple[int, str, str, int, bytes]]:
    """(leaf_index, event_id, case_id, seq, leaf) of every log entry, in leaf order."""
    with ledger.db.read() as tx:
        rows = tx.query(
            "SELECT leaf_index, event_id, case_id, seq, leaf FROM log_entries ORDER BY leaf_index"
        )
    return [(int(i), str(e), str(c), int(s), bytes(leaf)) for i, e, c, s, leaf in rows]


def _assert_log_is_whole(ledger: Ledger) -> list[tuple[int, str, str, int, bytes]]:
    """Leaf indexes 0..N-1, each event once, tree nodes = the from-scratch tree, every checkpoint a prefix."""
    rows = _log_rows(ledger)
    size = len(rows)
    assert [r[0] for r in rows] == list(range(size))
    assert len({r[1] for r in rows}) == size
    assert ledger.log_size() == size
    hashes = [merkle.leaf_hash(r[4]) for r in rows]
    with ledger.db.read() as tx:
        assert tlog.root_at(tx, size) == merkle.root_from_leaf_hashes(hashes)
        sizes = [int(r[0]) for r in tx.query("SELECT size FROM log_checkpoints ORDER BY size")]
    for s in sizes:  # checkpoints signed while writers were running cover exact prefixes
        assert ledger.checkpoint_at(s).root == merkle.root_from_leaf_hashes(hashes[:s])
    times = [_integrated_at(r[4]) for r in rows]
    assert times == sorted(times), "integrated_at went backwards"
    checkpoint = ledger.checkpoint()
    assert checkpoint is not None and checkpoint.size == size
    assert checkpoint.root == merkle.root_from_leaf_hashes(hashes)
    return rows


def _integrated_at(leaf: bytes) -> str:
    return str(json.loads(leaf)["integrated_at"])


def _assert_case_contiguous(ledger: Ledger, case_id: str, winners: list[bytes]) -> None:
    """The case holds exactly the winning envelopes, seq 1..n, each chained to the previous one."""
    stored = ledger.case_envelopes(case_id)
    assert stored == winners
    prev = None
    for seq, raw in enumerate(stored, start=1):
        st = parse_envelope(raw).statement
        assert (st.seq, st.prev) == (seq, prev)
        prev = hashlib.sha256(raw).hexdigest()
    assert ledger.case_head(case_id) == (len(stored), prev)
    assert [e["seq"] for e in ledger.timeline(case_id)] == list(range(1, len(stored) + 1))


# -- (a) threads racing on one case -------------------------------------------------------------------


def test_threads_racing_for_the_same_seq_get_one_receipt_each_round(
    make_ledger: Callable[..., Ledger],
) -> None:
    first = make_ledger()
    ledgers = [first, make_ledger(), make_ledger()]  # threads share instances, and instances share the db
    actors = Actors.register(first)
    case_id = new_case_id()
    winners = [actors.envelope("investigator", case_id, "CaseOpened", case_opened())]
    assert isinstance(first.append(winners)[0], Receipt)
    start = first.log_size()
    submitted: set[str] = set()
    for rnd in range(ROUNDS):
        version, head = first.case_head(case_id)
        batches = [
            [
                actors.envelope(
                    "investigator",
                    case_id,
                    "FootageCaptured",
                    footage_captured(f"ftg-{rnd}-{i}"),
                    seq=version + 1,
                    prev=head,
                )
            ]
            for i in range(THREADS)
        ]
        submitted |= {parse_envelope(b[0]).statement.event_id for b in batches}
        outcomes = [o for (o,) in _race(ledgers, batches)]
        receipts = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, Receipt)]
        conflicts = [o for o in outcomes if isinstance(o, LedgerError)]
        assert len(receipts) == 1, outcomes
        assert len(conflicts) == THREADS - 1
        for c in conflicts:
            assert isinstance(c, ConflictError) and c.code == "SEQ_CONFLICT", (c.code, c.message)
            assert c.refs["expected_seq"] == version + 2
        ((i, receipt),) = receipts
        assert receipt.seq == version + 1 and not receipt.duplicate
        winners.append(batches[i][0])
    assert first.log_size() == start + ROUNDS  # nothing partial: exactly one leaf per round
    _assert_case_contiguous(first, case_id, winners)
    losers = submitted - {parse_envelope(w).statement.event_id for w in winners}
    assert len(losers) == ROUNDS * (THREADS - 1)
    assert not losers & {r[1] for r in _log_rows(first)}  # no trace of a loser in the log
    _assert_log_is_whole(first)


def test_racing_batches_lose_only_the_conflicting_envelope(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    ledgers = [ledger, make_ledger()]
    actors = Actors.register(ledger)
    case_id = new_case_id()
    start = ledger.log_size()
    own_cases = [new_case_id() for _ in range(THREADS)]
    batches = [
        [
            actors.envelope(
                "investigator", case_id, "CaseOpened", case_opened(f"CPD-2026-{i:04d}"), seq=1, prev=None
            ),
            actors.envelope("investigator", own_cases[i], "CaseOpened", case_opened(), seq=1, prev=None),
        ]
        for i in range(THREADS)
    ]
    results = _race(ledgers, batches)
    shared = [r[0] for r in results]
    assert sum(isinstance(o, Receipt) for o in shared) == 1
    assert all(o.code == "SEQ_CONFLICT" for o in shared if isinstance(o, LedgerError))
    assert all(isinstance(r[1], Receipt) for r in results)  # the other envelope of each batch still lands
    assert ledger.log_size() == start + 1 + THREADS
    winner = next(b[0] for b, r in zip(batches, results, strict=True) if isinstance(r[0], Receipt))
    _assert_case_contiguous(ledger, case_id, [winner])
    for i, own in enumerate(own_cases):
        _assert_case_contiguous(ledger, own, [batches[i][1]])
    _assert_log_is_whole(ledger)


def test_the_same_envelope_submitted_concurrently_is_stored_once(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    actors = Actors.register(ledger)
    case_id = new_case_id()
    raw = actors.envelope("investigator", case_id, "CaseOpened", case_opened())
    start = ledger.log_size()
    outcomes = [o for (o,) in _race([ledger, make_ledger()], [[raw]] * THREADS)]
    assert all(isinstance(o, Receipt) for o in outcomes), outcomes
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert sum(not r.duplicate for r in receipts) == 1
    assert {(r.leaf_index, r.leaf_hash, r.integrated_at) for r in receipts} == {
        (start, receipts[0].leaf_hash, receipts[0].integrated_at)
    }
    assert ledger.log_size() == start + 1
    _assert_case_contiguous(ledger, case_id, [raw])


# -- (b) several OS processes ---------------------------------------------------------------------------


def _child(
    number: int,
    data_dir: str,
    database_url: str | None,
    seeds: dict[str, bytes],
    case_ids: list[str],
    base_time: str,
    barrier: Any,
    results: Any,
) -> None:
    """Open a Ledger of our own and append events for our cases; report (raw, receipt) pairs."""
    try:
        from ledger.settings import Settings

        t0 = time.monotonic()
        base = datetime.fromisoformat(base_time)

        def clock() -> datetime:
            return base + timedelta(seconds=time.monotonic() - t0)

        keys = {name: Ed25519PrivateKey.from_private_bytes(seed) for name, seed in seeds.items()}
        settings = Settings(data_dir=Path(data_dir), database_url=database_url, postgres_pool_size=2)
        done: list[tuple[bytes, dict[str, Any]]] = []
        with Ledger(settings, clock=clock) as ledger:
            heads: dict[str, tuple[int, str | None]] = {c: (0, None) for c in case_ids}

            def envelope(case_id: str, event_type: str, body: dict[str, Any]) -> bytes:
                seq, prev = heads[case_id][0] + 1, heads[case_id][1]
                return build_envelope(
                    origin=ledger.origin,
                    case_id=case_id,
                    event_type=event_type,
                    body=body,
                    key=keys["investigator"],
                    seq=seq,
                    prev=prev,
                    occurred_at=clock(),
                )

            def append(raws: list[bytes]) -> None:
                for raw, outcome in zip(raws, ledger.append(raws), strict=True):
                    if isinstance(outcome, LedgerError):
                        raise AssertionError(f"refused: {outcome.code}: {outcome.message}")
                    st = parse_envelope(raw).statement
                    heads[st.case_id] = (st.seq, outcome.envelope_sha256)
                    done.append((raw, {**outcome.to_json(), "duplicate": outcome.duplicate}))

            # Every round starts at a barrier, so all children contend for the write lock at once:
            # a batch opening every case, single appends across cases, then a batch again.
            barrier.wait(timeout=60)
            append(
                [
                    envelope(c, "CaseOpened", case_opened(f"CPD-2026-{number}{k:03d}"))
                    for k, c in enumerate(case_ids)
                ]
            )
            for n in range(2, EVENTS_PER_CASE):
                barrier.wait(timeout=60)
                for c in case_ids:
                    append([envelope(c, "FootageCaptured", footage_captured(f"ftg-{n}"))])
                if number == 0:
                    ledger.checkpoint()  # a checkpointer competing with the writers
            barrier.wait(timeout=60)
            append([envelope(c, "FootageCaptured", footage_captured("ftg-last")) for c in case_ids])
        results.put((number, "ok", done))
    except BaseException:
        barrier.abort()  # release the others at once instead of at their barrier timeout
        results.put((number, "error", traceback.format_exc()))


def _seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@pytest.mark.slow
def test_processes_appending_concurrently_keep_one_consistent_log(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    actors = Actors.register(ledger)
    start = ledger.log_size()
    settings = make_ledger.settings  # type: ignore[attr-defined]
    base_time = (make_ledger.clock.now + timedelta(minutes=1)).isoformat()  # type: ignore[attr-defined]
    seeds = {name: _seed(key) for name, key in actors.keys.items()}
    cases = [[new_case_id() for _ in range(CASES_PER_PROCESS)] for _ in range(PROCESSES)]

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    children = [
        ctx.Process(
            target=_child,
            args=(
                n,
                str(settings.data_dir),
                settings.database_url,
                seeds,
                cases[n],
                base_time,
                barrier,
                results,
            ),
        )
        for n in range(PROCESSES)
    ]
    for child in children:
        child.start()
    reports: dict[int, list[tuple[bytes, dict[str, Any]]]] = {}
    errors: list[str] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while len(reports) + len(errors) < PROCESSES:
            try:
                number, status, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue_mod.Empty:
                pytest.fail(f"children timed out; reported: {sorted(reports)}")
            if status == "ok":
                reports[number] = payload
            else:
                errors.append(f"child {number}:\n{payload}")
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
                child.join()
    assert not errors, "\n".join(errors)
    assert all(child.exitcode == 0 for child in children)

    acknowledged = [pair for n in sorted(reports) for pair in reports[n]]
    expected = PROCESSES * CASES_PER_PROCESS * EVENTS_PER_CASE
    assert len(acknowledged) == expected and not any(r["duplicate"] for _, r in acknowledged)

    rows = _assert_log_is_whole(ledger)
    assert len(rows) == start + expected
    by_index = {r[0]: r for r in rows}
    stored = {e.leaf_index: e for e in ledger.iter_entries()}
    seen_event_ids: set[str] = set()
    for raw, receipt in acknowledged:
        st = parse_envelope(raw).statement
        index = receipt["leaf_index"]
        row = by_index[index]
        assert (row[1], row[2], row[3]) == (st.event_id, st.case_id, st.seq)
        assert receipt["envelope_sha256"] == hashlib.sha256(raw).hexdigest()
        assert row[4] == tlog.leaf_bytes(receipt["envelope_sha256"], index, receipt["integrated_at"])
        assert merkle.leaf_hash(row[4]).hex() == receipt["leaf_hash"]
        assert stored[index].envelope == raw  # the events table holds the exact bytes
        assert st.event_id not in seen_event_ids
        seen_event_ids.add(st.event_id)
    writer_of = {receipt["leaf_index"]: n for n in reports for _, receipt in reports[n]}
    order = [writer_of[i] for i in sorted(writer_of)]
    switches = sum(a != b for a, b in itertools.pairwise(order))
    # Rounds are separated by barriers, so every round holds leaves of every child.
    assert switches >= EVENTS_PER_CASE * (PROCESSES - 1), f"children did not interleave ({switches} switches)"
    new_event_ids = {r[1] for r in rows[start:]}
    assert new_event_ids == seen_event_ids  # each envelope exactly once, nothing unacknowledged

    for n, case_ids in enumerate(cases):
        mine = [raw for raw, _ in reports[n]]
        for case_id in case_ids:
            in_order = [raw for raw in mine if parse_envelope(raw).statement.case_id == case_id]
            _assert_case_contiguous(ledger, case_id, in_order)
