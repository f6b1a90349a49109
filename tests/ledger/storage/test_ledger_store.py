"""The storage contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.errors import AuthorizationError, ConflictError, LedgerError, MalformedInputError
from ledger.append import Receipt
from ledger.envelope.canonical import canonical, parse_strict
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.log import merkle, tlog
from ledger.replay import rebuild
from ledger.store import Ledger
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id, run_cambridge_scenario


@pytest.fixture
def actors(ledger: Ledger) -> Actors:
    return Actors.register(ledger)


def test_init_registers_the_trust_root_and_service_key(ledger: Ledger) -> None:
    registry = ledger.registry_state()
    assert registry is not None
    roles = sorted(k.role for k in registry.keys)
    assert roles == ["admin", "service"]
    assert registry.root_key_id == ledger.config.admin_key_id
    assert ledger.log_size() == 2


def test_append_returns_a_receipt_and_the_case_projection(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    receipt = actors.ok("investigator", case_id, "CaseOpened", case_opened("CPD-2026-0001"))
    assert receipt.seq == 1 and receipt.leaf_index == ledger.log_size() - 1
    leaf = ledger.leaf(receipt.leaf_index)
    assert merkle.leaf_hash(leaf).hex() == receipt.leaf_hash
    assert parse_strict(leaf) == {
        "envelope_sha256": receipt.envelope_sha256,
        "index": receipt.leaf_index,
        "integrated_at": receipt.integrated_at,
        "v": 1,
    }
    view = ledger.case_view(case_id)
    assert view["status"] == "open" and view["version"] == 1 and view["case_number"] == "CPD-2026-0001"


def test_envelopes_are_stored_verbatim(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    raw = actors.envelope("investigator", case_id, "CaseOpened", case_opened())
    ledger.append([raw])
    assert ledger.case_envelopes(case_id) == [raw]
    (entry,) = [e for e in ledger.iter_entries() if e.case_id == case_id]
    assert entry.envelope == raw


def test_resubmitting_the_same_envelope_writes_nothing(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    raw = actors.envelope("investigator", case_id, "CaseOpened", case_opened())
    (first,) = ledger.append([raw])
    size = ledger.log_size()
    (again,) = ledger.append([raw])
    assert isinstance(first, Receipt) and isinstance(again, Receipt)
    assert again.duplicate and again.leaf_index == first.leaf_index and again.leaf_hash == first.leaf_hash
    assert ledger.log_size() == size


def test_same_event_id_with_other_bytes_is_refused(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    receipt = actors.ok("investigator", case_id, "CaseOpened", case_opened())
    other = actors.refused(
        "investigator", new_case_id(), "CaseOpened", case_opened("OTHER"), event_id=receipt.event_id
    )
    assert isinstance(other, ConflictError) and other.code == "EVENT_ID_REUSED"


def test_wrong_seq_and_wrong_prev_conflict(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    stale = actors.refused("investigator", case_id, "FootageCaptured", footage_captured(), seq=1, prev=None)
    assert (
        isinstance(stale, ConflictError) and stale.code == "SEQ_CONFLICT" and stale.refs["expected_seq"] == 2
    )
    bad_prev = actors.refused("investigator", case_id, "FootageCaptured", footage_captured(), prev="0" * 64)
    assert bad_prev.code == "PREV_MISMATCH"


def test_unknown_revoked_and_wrongly_roled_keys_are_refused(ledger: Ledger, actors: Actors) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    case_id = new_case_id()
    actors.keys["stranger"] = Ed25519PrivateKey.generate()
    unknown = actors.refused("stranger", case_id, "CaseOpened", case_opened())
    assert isinstance(unknown, AuthorizationError) and unknown.code == "UNKNOWN_KEY"
    wrong_role = actors.refused("auditor", case_id, "CaseOpened", case_opened())
    assert isinstance(wrong_role, AuthorizationError) and wrong_role.code == "ROLE_NOT_ALLOWED"
    actors.revoke("investigator")
    revoked = actors.refused("investigator", case_id, "CaseOpened", case_opened())
    assert revoked.code == "REVOKED_KEY"


def test_rule_violations_carry_their_code(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    first = actors.refused("investigator", case_id, "FootageCaptured", footage_captured())
    assert first.code == "CASE_NOT_OPENED"
    assert ledger.case_head(case_id) == (0, None)


def test_non_canonical_or_tampered_envelopes_are_refused(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    raw = actors.envelope("investigator", case_id, "CaseOpened", case_opened())
    pretty = json.dumps(json.loads(raw), indent=1).encode()
    (outcome,) = ledger.append([pretty])
    assert isinstance(outcome, MalformedInputError) and outcome.code == "NON_CANONICAL"
    data = json.loads(raw)
    data["signatures"][0]["sig"] = data["signatures"][0]["sig"][:-4] + "AAA="
    (forged,) = ledger.append([canonical(data)])
    assert isinstance(forged, LedgerError) and forged.code in {"BAD_SIGNATURE", "MALFORMED_ENVELOPE"}
    assert ledger.case_head(case_id) == (0, None)


def test_statement_for_another_ledger_is_refused(ledger: Ledger, actors: Actors) -> None:
    from ledger.envelope.signing import build_envelope

    raw = build_envelope(
        origin="elsewhere.example/ledger",
        case_id=new_case_id(),
        event_type="CaseOpened",
        body=case_opened(),
        key=actors.keys["investigator"],
        seq=1,
        prev=None,
        occurred_at=ledger.clock(),
    )
    (outcome,) = ledger.append([raw])
    assert isinstance(outcome, MalformedInputError) and outcome.code == "BINDING_MISMATCH"


def test_one_bad_envelope_does_not_fail_its_batch(ledger: Ledger, actors: Actors) -> None:
    a, b = new_case_id(), new_case_id()
    good = actors.envelope("investigator", a, "CaseOpened", case_opened("A"))
    bad = actors.envelope("investigator", b, "FootageCaptured", footage_captured())
    also_good = actors.envelope("investigator", b, "CaseOpened", case_opened("B"))
    outcomes = ledger.append([good, bad, also_good])
    assert isinstance(outcomes[0], Receipt) and isinstance(outcomes[2], Receipt)
    assert isinstance(outcomes[1], LedgerError)
    assert outcomes[2].leaf_index == outcomes[0].leaf_index + 1


def test_cambridge_scenario_and_rebuild_equal_incremental(ledger: Ledger, actors: Actors) -> None:
    case_id = new_case_id()
    sealed = ledger.sealed_store().seal(
        {"name": "Reporter Canary-91b2", "phone": "617-555-0100"}, now=ledger.clock()
    )
    run_cambridge_scenario(actors, case_id, sealed.to_json())
    view = ledger.case_view(case_id)
    assert view["status"] == "closed"
    (footage,) = view["footage"]
    assert footage["release_status"] == "released"
    before = _read_models(ledger)
    rebuild(ledger.db, ledger.appender, from_zero=True)
    assert _read_models(ledger) == before
    assert rebuild(ledger.db, ledger.appender, from_zero=False) == 0
    assert "Canary-91b2" not in json.dumps(before)


def _read_models(ledger: Ledger) -> dict[str, Any]:
    with ledger.db.read() as tx:
        return {
            table: tx.query(f"SELECT * FROM {table} ORDER BY 1, 2")
            for table in ("case_state", "case_timeline", "case_custody", "public_releases", "projection_tracking")
        }


def test_tree_nodes_match_a_from_scratch_tree(ledger: Ledger, actors: Actors) -> None:
    for _ in range(5):
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    size = ledger.log_size()
    leaves = [merkle.leaf_hash(ledger.leaf(i)) for i in range(size)]
    with ledger.db.read() as tx:
        assert tlog.root_at(tx, size) == merkle.root_from_leaf_hashes(leaves)
        for index in range(size):
            merkle.verify_inclusion(
                leaves[index],
                index,
                size,
                tlog.inclusion_proof(tx, index, size),
                merkle.root_from_leaf_hashes(leaves),
            )


def test_checkpoint_covers_every_entry_and_is_not_resigned(ledger: Ledger, actors: Actors) -> None:
    actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    first = ledger.checkpoint()
    assert first is not None and first.size == ledger.log_size()
    assert ledger.checkpoint() == first
    actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    second = ledger.checkpoint()
    assert second is not None and second.size == first.size + 1 and second.signed_at >= first.signed_at
    assert ledger.checkpoint_at(first.size).note == first.note


def test_registry_events_live_in_the_registry_stream(ledger: Ledger, actors: Actors) -> None:
    entries = [e for e in ledger.iter_entries() if e.case_id == REGISTRY_CASE_ID]
    assert [parse_envelope(e.envelope).statement.seq for e in entries] == list(range(1, len(entries) + 1))


def test_durability_settings_are_safe(ledger: Ledger) -> None:
    assert ledger.db.durability_problems() == []


def test_a_duplicate_key_maps_to_a_conflict(ledger: Ledger) -> None:
    with pytest.raises(ConflictError), ledger.db.write() as tx:
        tx.execute("INSERT INTO ledger_meta (key, value) VALUES ('schema_version', '1')")


@pytest.mark.postgres
def test_a_lock_timeout_maps_to_storage_unavailable(pg_database: str, tmp_path: Any) -> None:
    import psycopg

    from ledger.bootstrap import init_data_dir
    from ledger.settings import Settings
    from ledger.storage.sql import StorageError
    from tests.support.ledgers import ORIGIN, FakeClock

    settings = Settings(data_dir=tmp_path / "d", database_url=pg_database, postgres_lock_timeout=1)
    init_data_dir(settings.data_dir, ORIGIN, settings, now=FakeClock()())
    with Ledger(settings) as ledger, psycopg.connect(pg_database) as other, other.transaction():
        other.execute("LOCK TABLE ledger_events IN EXCLUSIVE MODE")
        with pytest.raises(StorageError):
            ledger.checkpoint()


def test_a_large_batch_checked_on_every_core_keeps_each_outcome_in_place(ledger: Ledger, actors: Actors) -> None:
    """A batch of PARALLEL_FROM or more has its signatures checked in threads before the lock: a
    forged signature, a malformed envelope and an unknown key are refused in their own places, and
    the rest are accepted in order."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.append import PARALLEL_FROM

    actors.keys["stranger"] = Ed25519PrivateKey.generate()
    raws = [
        actors.envelope("investigator", new_case_id(), "CaseOpened", case_opened(f"P{i}"))
        for i in range(PARALLEL_FROM * 2)
    ]
    forged = json.loads(raws[3])
    forged["signatures"][0]["sig"] = forged["signatures"][0]["sig"][:-4] + "AAA="
    raws[3] = canonical(forged)
    raws[5] = b"{not json"
    raws[9] = actors.envelope("stranger", new_case_id(), "CaseOpened", case_opened("X"))
    ledger.append([actors.envelope("investigator", new_case_id(), "CaseOpened", case_opened("warm"))])
    outcomes = ledger.append(raws)
    assert len(outcomes) == len(raws)
    assert isinstance(outcomes[3], LedgerError) and outcomes[3].code in {"BAD_SIGNATURE", "MALFORMED_ENVELOPE"}
    assert isinstance(outcomes[5], MalformedInputError)
    assert isinstance(outcomes[9], AuthorizationError) and outcomes[9].code == "UNKNOWN_KEY"
    accepted = [o for i, o in enumerate(outcomes) if i not in {3, 5, 9}]
    assert all(isinstance(o, Receipt) for o in accepted)
    indexes = [o.leaf_index for o in accepted if isinstance(o, Receipt)]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Receipt):
            assert outcome.event_id == parse_envelope(raws[i]).statement.event_id


def test_a_key_revoked_after_its_signature_was_checked_is_still_refused(ledger: Ledger, actors: Actors) -> None:
    """Signatures are checked before the lock against keys this process has seen; the key's status
    is decided under the lock, so a revocation that lands first wins, in a large batch too."""
    from ledger.append import PARALLEL_FROM

    ledger.append([actors.envelope("investigator", new_case_id(), "CaseOpened", case_opened("warm"))])
    raws = [
        actors.envelope("investigator", new_case_id(), "CaseOpened", case_opened(f"R{i}"))
        for i in range(PARALLEL_FROM)
    ]
    actors.revoke("investigator")
    outcomes = ledger.append(raws)
    assert [getattr(o, "code", None) for o in outcomes] == ["REVOKED_KEY"] * len(raws)
