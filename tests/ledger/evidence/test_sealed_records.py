"""Sealed records on both backends: keys apart from the data, one case per record, two-person
disclosure with every refusal on record, crypto-shredding and retention (docs/privacy.md)."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError
from ledger.audit.run import run_audit
from ledger.audit.source import read_database
from ledger.bootstrap import init_data_dir, register_key
from ledger.envelope.dsse import parse_envelope
from ledger.envelope.keys import raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.evidence import disclosure
from ledger.evidence.bundle import export_bundle
from ledger.evidence.keystore import FileKeyStore
from ledger.log import note
from ledger.log.witnessing import checkpoint_with_witnesses
from ledger.settings import ConfigurationError, Settings, key_path
from ledger.store import Ledger
from ledger.verify import VerifyOptions, report_json, verify_bundle
from tests.support.audit import Raw, options
from tests.support.cases import Actors, case_opened, hold_placed, new_case_id, referral_made, report_received
from tests.support.ledgers import ORIGIN, FakeClock

PERSON = {"name": "Jane Caller", "phone": "617-555-0100", "address": "12 Elm St, Cambridge"}
MARKERS = (b"Jane Caller", b"617-555-0100", b"Elm St")


@dataclass
class World:
    ledger: Ledger
    actors: Actors
    clock: FakeClock
    settings: Settings
    keystore: Path

    def sealed_case(self, person: dict[str, str] | None = None) -> tuple[str, str, str]:
        """A case with a report naming a fresh sealed record: (case id, sealed ref, commitment)."""
        ref = self.ledger.sealed_store().seal(person or PERSON, now=self.clock())
        case_id = new_case_id()
        self.actors.ok("investigator", case_id, "CaseOpened", case_opened())
        self.actors.ok("investigator", case_id, "ReportReceived", report_received(ref.to_json()))
        return case_id, ref.sealed_ref, ref.commitment

    def envelope(self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any) -> bytes:
        return self.actors.envelope(who, case_id, event_type, body, **kw)

    def refusals(self, case_id: str) -> list[dict[str, Any]]:
        out = []
        for raw in self.ledger.case_envelopes(case_id):
            st = parse_envelope(raw).statement
            if st.type == "SealedDisclosureRefused":
                out.append({**st.body, "signer": st.signer})
        return out


@pytest.fixture
def world(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    data_dir, keystore = tmp_path / "data", tmp_path / "keystore"
    clock = FakeClock()
    settings = Settings(data_dir=data_dir, database_url=database_url, keystore_dir=keystore)
    init_data_dir(data_dir, ORIGIN, settings, now=clock())
    ledger = Ledger(settings, clock=clock)
    actors = Actors.register(ledger)
    admin = key_path(data_dir, "admin")
    for name, actor, role in (("counsel", "Counsel F. Moreau", "counsel"), ("supervisor2", "Lt. G. Silva", "supervisor")):
        key = Ed25519PrivateKey.generate()
        register_key(ledger, admin, raw_public_key(key), actor=actor, role=role, authority=None)
        actors.keys[name] = key
    try:
        yield World(ledger, actors, clock, settings, keystore)
    finally:
        ledger.close()


def request(w: World, case_id: str, ref: str, who: str = "investigator", request_id: str = "dreq-1") -> Any:
    body = {"request_id": request_id, "sealed_ref": ref, "purpose": "court-ordered interview", "legal_basis": "Summons 17"}
    return w.actors.append(who, case_id, "SealedDisclosureRequested", body)


def approve(w: World, case_id: str, who: str = "counsel", request_id: str = "dreq-1") -> Any:
    return w.actors.append(who, case_id, "SealedDisclosureApproved", {"request_id": request_id})


def disclosed(w: World, case_id: str, ref: str, approvers: list[str], who: str = "investigator") -> bytes:
    body = {"request_id": "dreq-1", "sealed_ref": ref, "approvers": approvers}
    return w.envelope(who, case_id, "SealedRecordDisclosed", body)


def files_contain(root: Path, markers: tuple[bytes, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and any(m in path.read_bytes() for m in markers):
            found.append(str(path))
    return found


# ---------------------------------------------------------------------------- keys apart from the data


def test_the_database_and_the_data_dir_together_unseal_nothing(world: World, tmp_path: Path) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    assert stat.S_IMODE(w.keystore.stat().st_mode) == 0o700
    assert stat.S_IMODE((w.keystore / "kek.key").stat().st_mode) == 0o600
    rows = Raw(w.ledger).run("SELECT sealed_ref, case_id FROM sealed_records")
    assert rows == [(ref, case_id)]
    with w.ledger.db.read() as tx:  # ciphertext, nonce and ids only: no key material
        assert w.ledger.db.columns(tx, "sealed_records") == ["sealed_ref", "nonce", "ciphertext", "created_at", "case_id"]
    # a copy of the data dir (with the SQLite database in it) and of the database's rows
    w.ledger.db.compact()
    copy = tmp_path / "copy"
    shutil.copytree(w.settings.data_dir, copy)
    assert not (copy / "seal.key").exists() and not (copy / "keystore").exists()
    assert files_contain(copy, MARKERS) == []
    kek = (w.keystore / "kek.key").read_bytes().strip()
    assert files_contain(copy, (kek,)) == []
    # a ledger on the copy has no keystore; given an empty one of its own it still opens nothing
    stranger = tmp_path / "stranger-keystore"
    copied = w.settings.model_copy(update={"data_dir": copy, "keystore_dir": None})
    with Ledger(copied, clock=w.clock) as on_copy, pytest.raises(ConfigurationError) as info:
        on_copy.sealed_store()
    assert info.value.code == "KEYSTORE_NOT_FOUND"
    FileKeyStore.create(stranger)
    with Ledger(copied.model_copy(update={"keystore_dir": stranger}), clock=w.clock) as on_copy:
        with pytest.raises(LedgerError) as missing:
            on_copy.sealed_store().unseal(ref)
        assert missing.value.code == "SEALED_KEY_MISSING"
    # the real keystore does open it (the disclosure path, tested below, is the only caller)
    assert w.ledger.sealed_store().unseal(ref)[0] == PERSON


def test_a_keystore_in_the_data_dir_is_refused_unless_demo(tmp_path: Path, database_url: str | None) -> None:
    data_dir = tmp_path / "data"
    for inside in (data_dir / "keys" / "ks", data_dir, tmp_path):
        settings = Settings(data_dir=data_dir, database_url=database_url, keystore_dir=inside)
        with pytest.raises(ConfigurationError) as info:
            init_data_dir(data_dir, ORIGIN, settings, now=FakeClock()())
        assert info.value.code == "KEYSTORE_IN_DATA_DIR"
        assert not (data_dir / "ledger.json").exists()
    demo = Settings(data_dir=data_dir, database_url=database_url)
    init_data_dir(data_dir, ORIGIN, demo, now=FakeClock()())
    with Ledger(demo) as ledger:
        assert ledger.keystore_in_data_dir and (data_dir / "keystore" / "kek.key").is_file()


# ---------------------------------------------------------------------------- one case per record


def test_an_event_naming_an_unknown_or_foreign_sealed_record_is_refused(world: World) -> None:
    w = world
    case_id, ref, commitment = w.sealed_case()
    other = new_case_id()
    w.actors.ok("investigator", other, "CaseOpened", case_opened())
    made_up = {"sealed_ref": "00000000-0000-4000-8000-000000000000", "commitment": "12" * 32}
    exc = w.actors.refused("investigator", other, "ReportReceived", report_received(made_up))
    assert (exc.code, exc.refs) == ("UNKNOWN_SEALED_REF", {"sealed_ref": made_up["sealed_ref"]})
    exc = w.actors.refused("investigator", other, "ReportReceived", report_received({"sealed_ref": ref, "commitment": commitment}))
    assert (exc.code, exc.refs) == ("SEALED_REF_IN_OTHER_CASE", {"sealed_ref": ref})
    second = {**report_received({"sealed_ref": ref, "commitment": commitment}), "report_id": "rep-2"}
    w.actors.ok("investigator", case_id, "ReportReceived", second)  # the same case may name it again
    assert w.ledger.case_view(case_id)["sealed"][0]["sealed_ref"] == ref


# ---------------------------------------------------------------------------- two-person disclosure


def test_an_approved_disclosure_hands_the_record_to_the_requester_once(world: World) -> None:
    w = world
    case_id, ref, commitment = w.sealed_case()
    assert not isinstance(request(w, case_id, ref), LedgerError)
    assert not isinstance(approve(w, case_id), LedgerError)
    raw = disclosed(w, case_id, ref, ["Counsel F. Moreau"])
    done = disclosure.disclose(w.ledger, raw, sealed_ref=ref)
    assert done.data == PERSON and done.commitment == commitment
    assert parse_envelope(w.ledger.case_envelopes(case_id)[-1]).statement.type == "SealedRecordDisclosed"
    with pytest.raises(LedgerError) as again:
        disclosure.disclose(w.ledger, raw, sealed_ref=ref)
    assert again.value.code == "DISCLOSURE_ALREADY_MADE"
    with pytest.raises(LedgerError) as bound:
        disclosure.disclose(w.ledger, raw, sealed_ref="another-ref")
    assert bound.value.code == "BINDING_MISMATCH"
    view = w.ledger.case_view(case_id)
    assert view["disclosures"][0]["disclosed_seq"] == 5 and view["disclosure_refusals"] == 0
    text = b"".join(w.ledger.case_envelopes(case_id)) + json.dumps(view).encode()
    assert not any(m in text for m in MARKERS)


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("one approver alone", "DISCLOSURE_NOT_APPROVED"),
        ("same person twice", "SAME_PERSON"),
        ("expired approval", "APPROVAL_EXPIRED"),
        ("wrong role", "ROLE_NOT_ALLOWED"),
    ],
)
def test_every_refused_attempt_is_recorded_by_the_service(world: World, scenario: str, code: str) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    request(w, case_id, ref, who="supervisor")
    attempted = "SealedDisclosureApproved"
    if scenario == "one approver alone":
        outcome = w.ledger.append([disclosed(w, case_id, ref, ["Sgt. B. Chen"], who="supervisor")])[0]
        attempted = "SealedRecordDisclosed"
    elif scenario == "same person twice":
        outcome = approve(w, case_id, who="supervisor")
    elif scenario == "expired approval":
        approve(w, case_id, who="counsel")
        w.clock.advance(hours=24, seconds=1)
        outcome = w.ledger.append([disclosed(w, case_id, ref, ["Counsel F. Moreau"], who="supervisor")])[0]
        attempted = "SealedRecordDisclosed"
    else:
        outcome = approve(w, case_id, who="investigator")
    assert isinstance(outcome, LedgerError) and outcome.code == code
    (refusal,) = w.refusals(case_id)
    service = w.ledger.registry_state().lookup(refusal["signer"])
    assert service is not None and service.role == "service"
    actor = {"one approver alone": "Sgt. B. Chen", "same person twice": "Sgt. B. Chen",
             "expired approval": "Sgt. B. Chen", "wrong role": "Det. A. Rivera"}[scenario]
    assert {k: v for k, v in refusal.items() if k != "signer"} == {
        "request_id": "dreq-1", "sealed_ref": ref if attempted == "SealedRecordDisclosed" else None,
        "attempted": attempted, "actor": actor, "code": code,
    }
    assert w.ledger.case_view(case_id)["disclosure_refusals"] == 1
    with pytest.raises(LedgerError):
        disclosure.disclose(w.ledger, disclosed(w, case_id, ref, ["x"], who="supervisor"), sealed_ref=ref)
    assert len(w.refusals(case_id)) == 2  # the refused disclosure through disclose() is on record too


def test_an_approval_by_another_supervisor_or_counsel_within_the_window_suffices(world: World) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    request(w, case_id, ref, who="counsel")
    w.clock.advance(hours=23)
    assert not isinstance(approve(w, case_id, who="supervisor2"), LedgerError)
    raw = disclosed(w, case_id, ref, ["Lt. G. Silva"], who="counsel")
    assert disclosure.disclose(w.ledger, raw, sealed_ref=ref).data == PERSON


def test_a_back_dated_disclosure_statement_is_refused(world: World) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    request(w, case_id, ref)
    approve(w, case_id)
    version, head = w.ledger.case_head(case_id)
    raw = build_envelope(
        origin=w.ledger.origin, case_id=case_id, event_type="SealedRecordDisclosed",
        body={"request_id": "dreq-1", "sealed_ref": ref, "approvers": ["Counsel F. Moreau"]},
        key=w.actors.keys["investigator"], seq=version + 1, prev=head,
        occurred_at=w.clock.now - timedelta(seconds=w.settings.max_clock_skew_seconds + 1),
    )
    with pytest.raises(LedgerError) as info:
        disclosure.disclose(w.ledger, raw, sealed_ref=ref)
    assert info.value.code == "CLOCK_SKEW" and w.refusals(case_id) == []


# ---------------------------------------------------------------------------- shredding


def _audit_and_bundle_verify(w: World, case_id: str, tmp_path: Path) -> None:
    report = run_audit(read_database(w.ledger.db), options(w.ledger))
    assert report.findings == []
    checkpoint_with_witnesses(w.ledger)
    bundle = tmp_path / f"{case_id}.zip"
    export_bundle(w.ledger, case_id, bundle)
    vkey = note.make_verifier_key(w.ledger.config.log_key_name, w.ledger.log_key.public_key())
    pins = VerifyOptions(vkey=note.parse_verifier_key(str(vkey)), trust_root=w.ledger.config.admin_key_id)
    verified = report_json(verify_bundle(bundle, pins))
    assert verified["verdict"] == "verified" and verified["findings"] == []


def test_a_shred_destroys_the_key_and_the_row_and_everything_still_verifies(world: World, tmp_path: Path) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    request(w, case_id, ref)
    approve(w, case_id)
    key_file = FileKeyStore.open(w.keystore)._file(ref)
    assert key_file.is_file()
    result = disclosure.shred(w.ledger, w.actors.keys["supervisor"], case_id, ref, "no longer needed")
    assert result.destroyed and not key_file.exists()
    assert Raw(w.ledger).run("SELECT COUNT(*) FROM sealed_records")[0][0] == 0
    with pytest.raises(LedgerError) as gone:
        disclosure.disclose(w.ledger, disclosed(w, case_id, ref, ["Counsel F. Moreau"]), sealed_ref=ref)
    assert gone.value.code == "SHREDDED"
    assert w.refusals(case_id)[-1]["code"] == "SHREDDED"
    assert w.ledger.case_view(case_id)["sealed"][0]["shredded"] is True
    if not w.ledger.db.postgres:
        w.ledger.db.compact()
        sqlite = w.settings.data_dir
        assert files_contain(sqlite, MARKERS) == []
    _audit_and_bundle_verify(w, case_id, tmp_path)
    assert w.ledger.rebuild_read_models() > 0  # replay still accepts the report naming the shredded record
    # a new report cannot bring the shredded record back
    exc = w.actors.refused(
        "investigator", case_id, "ReportReceived", {**report_received({"sealed_ref": ref, "commitment": "12" * 32}),
                                                    "report_id": "rep-9"},
    )
    assert exc.code == "SHREDDED"


def test_a_hold_or_an_unacknowledged_referral_blocks_the_shred(world: World) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    w.actors.ok("investigator", case_id, "ReferralMade", referral_made())
    w.actors.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed())
    with pytest.raises(LedgerError) as info:
        disclosure.shred(w.ledger, w.actors.keys["supervisor"], case_id, ref, "retention")
    assert (info.value.code, info.value.refs) == ("SHRED_BLOCKED_BY_HOLD", {"sealed_ref": ref, "hold_id": "hold-1"})
    assert FileKeyStore.open(w.keystore).has(ref) and w.ledger.sealed_store().row_exists(ref)


def test_a_crash_between_the_event_and_the_destruction_is_finished_later(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    case_id, ref, _ = w.sealed_case()
    keystore = FileKeyStore.open(w.keystore)

    def crash(ledger: Ledger, sealed_ref: str) -> bool:
        raise OSError("the process died here")

    monkeypatch.setattr(disclosure, "destroy", crash)
    disclosure.shred(w.ledger, w.actors.keys["supervisor"], case_id, ref, "no longer needed", finish=False)
    assert parse_envelope(w.ledger.case_envelopes(case_id)[-1]).statement.type == "SealedRecordShredded"
    assert keystore.has(ref) and w.ledger.sealed_store().row_exists(ref)
    monkeypatch.undo()
    assert disclosure.finish_shreds(w.ledger) == 1  # what the next start, shred or retention run does
    assert not keystore.has(ref) and not w.ledger.sealed_store().row_exists(ref)
    assert disclosure.finish_shreds(w.ledger) == 0


def test_a_planted_shred_in_the_log_tables_destroys_nothing(world: World) -> None:
    """An insider who can only insert rows plants a stored event and a log row labelled
    SealedRecordShredded for a live record (copying a signed request that names it): the next
    start's clean-up must not destroy the key, as no signed shred is in the case's checked state."""
    w = world
    case_id, ref, _ = w.sealed_case()
    request(w, case_id, ref)
    keystore = FileKeyStore.open(w.keystore)
    raw = Raw(w.ledger)
    (named,) = [e for e in w.ledger.case_envelopes(case_id)
                if parse_envelope(e).statement.type == "SealedDisclosureRequested"]
    version, _ = w.ledger.case_head(case_id)
    size = w.ledger.log_size()
    raw.run(
        f"INSERT INTO {raw.events} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        (raw.key(case_id), version + 1, "x", named),
    )
    raw.run(
        "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
        " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (size, "planted", case_id, version + 1, "SealedRecordShredded", "0" * 64, b"x", "2026-02-05T17:00:00Z"),
    )
    assert (case_id, ref) in disclosure.shredded_refs(w.ledger)  # the planted row is a candidate
    assert disclosure.finish_shreds(w.ledger) == 0
    assert keystore.has(ref) and w.ledger.sealed_store().row_exists(ref)


# ---------------------------------------------------------------------------- retention


def test_retention_shreds_cases_closed_long_enough_and_is_idempotent(world: World) -> None:
    w = world
    old, old_ref, _ = w.sealed_case()
    held, held_ref, _ = w.sealed_case({"name": "B"})
    recent, recent_ref, _ = w.sealed_case({"name": "C"})
    _open, open_ref, _ = w.sealed_case({"name": "D"})
    w.actors.ok("investigator", held, "InvestigationHoldPlaced", hold_placed())
    for case_id in (old, held):
        w.actors.ok("supervisor", case_id, "CaseClosed", {"disposition": "done"})
    w.clock.advance(days=80)
    w.actors.ok("supervisor", recent, "CaseClosed", {"disposition": "done"})
    w.clock.advance(days=11)
    report = disclosure.run_retention(w.ledger, after_days=90, now=w.clock())
    assert report.shredded == [(old, old_ref)]
    assert report.blocked == [(held, held_ref, "SHRED_BLOCKED_BY_HOLD")]
    keystore = FileKeyStore.open(w.keystore)
    assert not keystore.has(old_ref) and all(keystore.has(r) for r in (held_ref, recent_ref, open_ref))
    shred_event = parse_envelope(w.ledger.case_envelopes(old)[-1]).statement
    assert shred_event.type == "SealedRecordShredded"
    assert w.ledger.registry_state().lookup(shred_event.signer).role == "service"
    again = disclosure.run_retention(w.ledger, after_days=90, now=w.clock())
    assert again.shredded == [] and again.finished == 0 and len(w.ledger.case_envelopes(old)) == 4
    assert json.dumps(report.to_json()).count("Jane") == 0
    later = disclosure.run_retention(w.ledger, after_days=10, now=w.clock())
    assert later.shredded == [(recent, recent_ref)]
