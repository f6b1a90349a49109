"""The shared verification engine over a real ledger's entries: clean, then altered one way at a time."""

from __future__ import annotations

import json

import pytest

from ledger.envelope.canonical import canonical
from ledger.store import Ledger
from ledger.verify.engine import Entry, check_entries
from tests.support.cases import Actors, new_case_id, run_cambridge_scenario


@pytest.fixture
def entries(ledger: Ledger) -> tuple[Ledger, str, list[Entry]]:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    sealed = ledger.sealed_store().seal({"name": "x"}, now=ledger.clock())
    run_cambridge_scenario(actors, case_id, sealed.to_json())
    return ledger, case_id, [Entry(e.leaf_index, e.envelope, e.leaf) for e in ledger.iter_entries()]


def codes(checker: object) -> list[tuple[str, int | None]]:
    return [(f.code, f.leaf_index) for f in checker.findings]  # type: ignore[attr-defined]


def test_a_clean_ledger_has_no_findings_and_replays_the_case(
    entries: tuple[Ledger, str, list[Entry]],
) -> None:
    ledger, case_id, items = entries
    checker = check_entries(items, origin=ledger.origin, trust_root=ledger.config.admin_key_id)
    assert checker.findings == []
    assert checker.cases[case_id].state.status == "closed"
    assert len(checker.cases[case_id].events) == 11


def test_pinned_trust_root_must_match(entries: tuple[Ledger, str, list[Entry]]) -> None:
    ledger, _, items = entries
    checker = check_entries(items, origin=ledger.origin, trust_root="0" * 64)
    assert [(f.code, f.leaf_index) for f in checker.findings] == [("UNKNOWN_KEY", 0)]  # one finding, no cascade


def test_an_edited_envelope_is_named(entries: tuple[Ledger, str, list[Entry]]) -> None:
    ledger, _, items = entries
    victim = items[-3]
    data = json.loads(victim.envelope)
    data["signatures"][0]["sig"] = (
        data["signatures"][0]["sig"][:10]
        + ("A" if data["signatures"][0]["sig"][10] != "A" else "B")
        + data["signatures"][0]["sig"][11:]
    )
    items[-3] = Entry(victim.leaf_index, canonical(data), victim.leaf)
    checker = check_entries(items, origin=ledger.origin)
    assert ("BAD_SIGNATURE", victim.leaf_index) in codes(checker)
    assert ("LEAF_MISMATCH", victim.leaf_index) in codes(checker)


def test_a_removed_event_breaks_the_chain_once(entries: tuple[Ledger, str, list[Entry]]) -> None:
    ledger, _, items = entries
    removed = items.pop(-4)
    checker = check_entries(items, origin=ledger.origin)
    assert codes(checker) == [("SEQ_GAP", removed.leaf_index + 1)]


def test_an_unparseable_entry_is_a_finding_not_a_crash(entries: tuple[Ledger, str, list[Entry]]) -> None:
    ledger, _, items = entries
    items[-1] = Entry(items[-1].leaf_index, b"\x00not json", items[-1].leaf)
    checker = check_entries(items, origin=ledger.origin)
    assert ("MALFORMED_ENTRY", items[-1].leaf_index) in codes(checker)


def test_a_release_under_hold_is_a_rule_violation(entries: tuple[Ledger, str, list[Entry]]) -> None:
    ledger, _, items = entries
    # Drop the hold-lift (and everything after it that depends on it in this case) to make the release illegal.
    lifted = next(i for i, e in enumerate(items) if b"InvestigationHoldLifted" in _statement(e))
    checker = check_entries(items[:lifted] + items[lifted + 1 :], origin=ledger.origin)
    assert any(f.code == "RULE_VIOLATION" and "RELEASE_UNDER_HOLD" in f.message for f in checker.findings)


def _statement(entry: Entry) -> bytes:
    import base64

    return base64.b64decode(json.loads(entry.envelope)["payload"])
