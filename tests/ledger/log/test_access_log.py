"""The access log in storage (SQLite and PostgreSQL): gapless indexes, an RFC 6962 tree of its own,
checkpoints under ``<origin>/access`` that never pass for case-log checkpoints, proofs that verify."""

from __future__ import annotations

import pytest

from domain.errors import MalformedInputError, VerificationError
from ledger.log import merkle, note
from ledger.log.access_entry import ANONYMOUS, DENIED, AccessRecord, access_origin, entry_bytes, parse_entry
from ledger.store import Ledger
from tests.support.audit import verifier_key
from tests.support.cases import new_case_id

CASE = "0b8f4d52-3a55-4c5a-9d0e-5a8d1e2f3a4b"


def read(case_id: str | None = CASE, **fields: object) -> AccessRecord:
    values: dict[str, object] = {"action": "case.read", "actor": "Det. A. Rivera", "role": "investigator",
                                 "token_id": "0123456789abcdef", "case_id": case_id, "request_id": "req-00000001"}
    values.update(fields)
    return AccessRecord(**values)  # type: ignore[arg-type]


def test_batches_get_gapless_indexes_and_never_touch_the_case_log(ledger: Ledger) -> None:
    log_size = ledger.log_size()
    assert ledger.access_log.append([read(), read(item="a" * 64, action="evidence.download")]) == [0, 1]
    assert ledger.access_log.append([read(None, action="cases.list")]) == [2]
    assert ledger.access_log.size() == 3 and ledger.log_size() == log_size
    stored = ledger.access_log.entries()
    assert [e.index for e in stored] == [0, 1, 2]
    first = parse_entry(stored[0].entry)
    assert first.index == 0 and first.record == read()
    assert stored[0].entry == entry_bytes(read(), 0, first.recorded_at)  # the exact canonical bytes
    times = [parse_entry(e.entry).recorded_at for e in stored]
    assert times == sorted(times)


def test_filters_and_pagination(ledger: Ledger) -> None:
    other = new_case_id()
    ledger.access_log.append([read(), read(other), read(actor="Sgt. B. Chen"), read(), read(other)])
    log = ledger.access_log
    assert [e.index for e in log.entries(case_id=CASE)] == [0, 2, 3]
    assert [e.index for e in log.entries(case_id=CASE, actor="Det. A. Rivera")] == [0, 3]
    assert [e.index for e in log.entries(after=1, limit=2)] == [2, 3]
    assert [e.index for e in log.entries(case_id=other, below=4)] == [1]


def test_checkpoints_are_signed_under_the_access_origin_and_proofs_verify(ledger: Ledger) -> None:
    log = ledger.access_log
    assert log.checkpoint() is None  # never a checkpoint of size 0
    log.append([read(), read(code="CASE_NOT_FOUND", outcome=DENIED), read(actor=ANONYMOUS, role=None, token_id=None)])
    first = log.checkpoint()
    assert first is not None and first.size == 3 and log.checkpoint() == first  # nothing new: the same one
    vkey = verifier_key(ledger)
    body = note.verify_checkpoint(first.note, vkey, origin=access_origin(ledger.origin)).checkpoint
    assert body.origin == ledger.origin + "/access"
    with pytest.raises(VerificationError):  # an access checkpoint never passes as the case log's
        note.verify_checkpoint(first.note, vkey, origin=ledger.origin)
    leaves = [merkle.leaf_hash(e.entry) for e in log.entries()]
    assert body.root == merkle.root_from_leaf_hashes(leaves)
    for index, leaf in enumerate(leaves):
        merkle.verify_inclusion(leaf, index, 3, log.inclusion_proof(index, 3), body.root)
    log.append([read(), read()])
    second = log.checkpoint()
    assert second is not None and second.size == 5 and log.latest_checkpoint() == second
    merkle.verify_consistency(3, 5, log.consistency_proof(3, 5), first.root, second.root)
    assert log.checkpoint_at(3) == first
    case_checkpoint = ledger.latest_checkpoint()
    assert case_checkpoint is None or case_checkpoint.size == ledger.log_size()


def test_a_checkpoint_written_by_another_process_is_signed_from_the_stored_tree(
    ledger: Ledger, make_ledger: object
) -> None:
    ledger.access_log.append([read(), read()])
    other: Ledger = make_ledger()  # type: ignore[operator]
    other.access_log.append([read()])  # this process's frontier is now stale
    checkpoint = ledger.access_log.checkpoint()
    assert ledger.access_log.append([read()]) == [3]
    assert checkpoint is not None and checkpoint.size == 3
    leaves = [merkle.leaf_hash(e.entry) for e in ledger.access_log.entries()]
    assert checkpoint.root == merkle.root_from_leaf_hashes(leaves[:3])


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"action": "case.delete"}, "unknown action"),
        ({"outcome": DENIED}, "denial carries"),
        ({"code": "CASE_NOT_FOUND"}, "denial carries"),
        ({"item": "why I looked: a free text purpose"}, "item"),
        ({"case_id": "CASE-1"}, "case_id"),
        ({"actor": "x\n"}, "actor"),
        ({"token_id": "elt_secret"}, "token_id"),
    ],
)
def test_a_record_holds_identifiers_only(fields: dict[str, object], why: str) -> None:
    with pytest.raises(MalformedInputError, match=why) as caught:
        read(**fields)
    assert caught.value.code == "BAD_ACCESS_ENTRY"


def test_parse_entry_is_strict() -> None:
    raw = entry_bytes(read(), 7, "2026-02-05T17:05:00Z")
    assert parse_entry(raw).index == 7
    for bad in (raw.replace(b'"v":1', b'"v":2'), raw[:-1] + b',"x":1}', raw.replace(b'{"action"', b'{ "action"')):
        with pytest.raises(MalformedInputError):
            parse_entry(bad)
