"""A new event type is one declaration: every table, rule, view, check and report picks it up.

The types below live in a module written to a temporary folder at test time, so no file of the
project names them. They are registered the only way there is (``@register``, on import) and
unregistered afterwards, so the other tests see the usual sixteen types.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from domain.case import ALLOWED_WHEN_CLOSED, CaseState, apply
from domain.errors import AuthorizationError, InvalidEventError, RuleViolation
from domain.events import (
    CASE_EVENT_TYPES,
    EVENT_TYPES,
    REGISTRY_EVENT_TYPES,
    Custody,
    Event,
    Rules,
    media_id_fields,
    parse_body,
    register,
    stored_file,
    unregister,
)
from domain.projections import (
    case_summary,
    case_view,
    public_release_entries,
    statistics_entries,
    summarize,
    timeline_entry,
)
from domain.roles import ALLOWED, authorize
from ledger.evidence.bundle import export_bundle
from ledger.evidence.fixity import check_fixity, expected_files
from ledger.evidence.footage import FootageStore
from ledger.log import note
from ledger.log.witnessing import checkpoint_with_witnesses
from ledger.store import Ledger
from ledger.verify.bundle import VerifyOptions, verify_bundle
from ledger.verify.report import render_text, report_json
from ledger.verify.report_html import render_html
from tests.support.audit import audit
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.domain import CASE_ID, body, ctx, ev

MODULE = '''
"""Throwaway event types: a still photo (a media file with its own id field) and an audit review."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from domain.case_state import CaseState, refuse_duplicate
from domain.context import DomainConfig, EventContext
from domain.events import Custody, Event, Media, Rules, register
from domain.fields import BOOL, COUNT, ID, SHA256, SHORT, TEXT, TIMESTAMP, Enum, spec
from domain.records import Footage
from domain.vocabulary import INVESTIGATION


def take_photo(state: CaseState, e: PhotoCaptured, ctx: EventContext, _: DomainConfig) -> CaseState:
    refuse_duplicate(state.footage_by_id(e.photo_id) is not None, "photo_id", e.photo_id)
    photo = Footage(
        footage_id=e.photo_id,
        source="other",
        device_id=e.camera_id,
        recorded_from=e.taken_at,
        recorded_to=e.taken_at,
        sha256=e.sha256,
        size_bytes=e.size_bytes,
        media_type="image/jpeg",
        depicts=("property_damage_by_federal_officials",),
        stored=e.stored,
        custodian=e.custodian,
        captured_at=ctx.occurred_at,
        captured_seq=ctx.seq,
        custody_steps=1,  # its first custody link, declared below
    )
    return replace(state, footage=(*state.footage, photo))


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class PhotoCaptured(Event):
    TYPE: ClassVar[str] = "PhotoCaptured"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=take_photo,
        label=lambda b: f"Photo {b['photo_id']} taken with {b['camera_id']}",
        refs=("photo_id", "camera_id"),
        media=Media(id_field="photo_id", stored_field="stored"),
        custody=Custody(footage_field="photo_id", to_field="custodian"),
    )
    photo_id: str = spec(ID)
    camera_id: str = spec(ID)
    taken_at: str = spec(TIMESTAMP)
    sha256: str = spec(SHA256)
    size_bytes: int = spec(COUNT)
    custodian: str = spec(SHORT)
    stored: bool = spec(BOOL)


def review(state: CaseState, e: CaseReviewed, ctx: EventContext, _: DomainConfig) -> CaseState:
    return state  # the review is on the record; the case state only moves its version


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class CaseReviewed(Event):
    TYPE: ClassVar[str] = "CaseReviewed"
    RULES: ClassVar[Rules] = Rules(
        roles=frozenset({"auditor"}),
        effect=review,
        when_closed=True,
        label=lambda b: f"Case reviewed ({b['outcome']})",
        refs=("review_id", "outcome"),
    )
    review_id: str = spec(ID)
    outcome: str = spec(Enum(("no_concerns", "concerns_noted")))
    note: str = spec(TEXT)
'''

PHOTO_BYTES = b"a still photo of a damaged car" * 40
PHOTO_SHA = hashlib.sha256(PHOTO_BYTES).hexdigest()
NOTE = "Reviewer note: free text that no view or report may show."
ORIGINAL_TYPES = dict(EVENT_TYPES)


def load_module(folder: Path) -> ModuleType:
    """Import the throwaway module from ``folder`` (registering its types)."""
    path = folder / "throwaway_event_types.py"
    path.write_text(textwrap.dedent(MODULE), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("throwaway_event_types", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the ClassVar annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def extension(tmp_path: Path) -> Iterator[ModuleType]:
    module = load_module(tmp_path)
    try:
        yield module
    finally:
        for cls in (module.PhotoCaptured, module.CaseReviewed):
            unregister(cls)
        assert EVENT_TYPES == ORIGINAL_TYPES


def photo_body(photo_id: str = "photo-1", *, stored: bool = False) -> dict[str, Any]:
    return {
        "photo_id": photo_id,
        "camera_id": "cam-7",
        "taken_at": "2026-02-05T17:05:00Z",
        "sha256": PHOTO_SHA,
        "size_bytes": len(PHOTO_BYTES),
        "custodian": "CPD Photo Unit",
        "stored": stored,
    }


def review_body() -> dict[str, Any]:
    return {"review_id": "rev-1", "outcome": "no_concerns", "note": NOTE}


# --- the derived tables -------------------------------------------------------------------------------


def test_the_tables_are_derived_from_the_declarations(extension: ModuleType) -> None:
    assert EVENT_TYPES["PhotoCaptured"] is extension.PhotoCaptured
    assert {"PhotoCaptured", "CaseReviewed"} <= CASE_EVENT_TYPES
    assert "PhotoCaptured" not in REGISTRY_EVENT_TYPES and len(CASE_EVENT_TYPES) == 21
    assert "PhotoCaptured" in ALLOWED["investigator"] and "PhotoCaptured" in ALLOWED["supervisor"]
    assert ALLOWED["auditor"] == {"CaseReviewed"} and ALLOWED["prosecutor"] == {"ReferralAcknowledged"}
    sealed = {
        "SealedDisclosureRequested", "SealedDisclosureApproved", "SealedRecordDisclosed",
        "SealedDisclosureRefused", "SealedRecordShredded",
    }
    assert {"CaseReopened", "EvidenceAccessed", "CaseReviewed", *sealed} == ALLOWED_WHEN_CLOSED
    assert media_id_fields() == ("footage_id", "derivative_id", "photo_id")
    authorize("auditor", "CaseReviewed")
    with pytest.raises(AuthorizationError) as info:
        authorize("prosecutor", "PhotoCaptured")
    assert info.value.code == "ROLE_NOT_ALLOWED"


def test_bodies_are_validated_like_any_other(extension: ModuleType) -> None:
    event = parse_body("PhotoCaptured", 1, photo_body())
    assert isinstance(event, extension.PhotoCaptured) and event.to_body() == photo_body()
    with pytest.raises(InvalidEventError) as info:
        parse_body("PhotoCaptured", 1, {**photo_body(), "sha256": "not-a-hash"})
    assert (info.value.code, info.value.refs["field"]) == ("INVALID_BODY", "sha256")
    with pytest.raises(InvalidEventError) as info:
        parse_body("NoSuchType", 1, {})
    assert "PhotoCaptured v1" in info.value.message and "CaseReviewed v1" in info.value.message


def test_rules_timeline_and_views_apply_the_declarations(extension: ModuleType) -> None:
    state: CaseState | None = apply(None, ev("CaseOpened"), ctx(0))
    photo = parse_body("PhotoCaptured", 1, photo_body(stored=True))
    with pytest.raises(AuthorizationError):
        apply(state, photo, ctx(1, role="prosecutor"))
    state = apply(state, photo, ctx(1, role="investigator"))
    with pytest.raises(RuleViolation) as refused:
        apply(state, photo, ctx(2, role="investigator"))
    assert refused.value.code == "DUPLICATE_ID" and refused.value.refs == {"photo_id": "photo-1"}
    assert stored_file(photo) == (PHOTO_SHA, {"photo_id": "photo-1"})

    entry = timeline_entry(photo, ctx(1, role="investigator"))
    assert entry["label"] == "Photo photo-1 taken with cam-7"
    assert entry["refs"] == {"photo_id": "photo-1", "camera_id": "cam-7"}
    view = case_view(state)
    assert [(f["footage_id"], f["release_status"]) for f in view["footage"]] == [("photo-1", "eligible")]
    assert public_release_entries(state) == []  # not released: nothing public
    assert [e["captured_at"] for e in statistics_entries(state)] == [ctx(1).occurred_at]  # but counted
    assert case_summary(state)["footage"][0]["footage_id"] == "photo-1"

    state = apply(state, ev("CaseClosed"), ctx(2))
    with pytest.raises(RuleViolation) as refused:
        apply(state, parse_body("PhotoCaptured", 1, photo_body("photo-2")), ctx(3, role="investigator"))
    assert refused.value.code == "CASE_CLOSED"
    reviewed = parse_body("CaseReviewed", 1, review_body())
    state = apply(state, reviewed, ctx(3, role="auditor"))
    assert (state.status, state.version, state.case_id) == ("closed", 3, CASE_ID)
    assert timeline_entry(reviewed, ctx(3, role="auditor"))["refs"] == {
        "review_id": "rev-1",
        "outcome": "no_concerns",
    }
    assert NOTE not in str(case_view(state)) and NOTE not in str(case_summary(state))


# --- the ledger, the footage store, the bundle and its verifier ---------------------------------------


def test_the_ledger_the_bundle_verifier_and_the_reports_pick_them_up(
    extension: ModuleType, ledger: Ledger, tmp_path: Path
) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    missing = actors.refused("investigator", case_id, "PhotoCaptured", photo_body(stored=True))
    assert missing.code == "FOOTAGE_NOT_STORED" and missing.refs == {"photo_id": "photo-1"}
    store = FootageStore(ledger.data_dir / "footage")
    store.put_stream([PHOTO_BYTES])
    actors.ok("investigator", case_id, "PhotoCaptured", photo_body(stored=True))
    actors.ok("supervisor", case_id, "CaseClosed", {"disposition": "Reviewed and closed"})
    assert (
        actors.refused("investigator", case_id, "PhotoCaptured", photo_body("photo-2")).code == "CASE_CLOSED"
    )
    assert actors.refused("prosecutor", case_id, "CaseReviewed", review_body()).code == "ROLE_NOT_ALLOWED"
    actors.ok("auditor", case_id, "CaseReviewed", review_body())

    timeline = ledger.timeline(case_id)
    assert [e["label"] for e in timeline[1:]] == [
        "Photo photo-1 taken with cam-7",
        "Case closed",
        "Case reviewed (no_concerns)",
    ]
    view = ledger.case_view(case_id)
    assert (view["status"], view["version"], view["footage"][0]["footage_id"]) == ("closed", 4, "photo-1")
    assert ledger.public_releases() == []
    # its custody link, declared with the type, is a row of the chain like a FootageCaptured's
    (link,) = ledger.custody(case_id, "photo-1")
    assert (link["step"], link["from_custodian"], link["to_custodian"], link["purpose"], link["seq"]) == (
        1, None, "CPD Photo Unit", "capture", 2
    )
    assert view["footage"][0]["custody"] == {"steps": 1, "href": f"/v1/cases/{case_id}/footage/photo-1/custody"}

    # fixity: the stored claim is expected in the store, under the type's own id field
    expected = expected_files(ledger)
    assert expected == {PHOTO_SHA: [{"case_id": case_id, "photo_id": "photo-1", "seq": "2"}]}
    (problem,) = check_fixity(FootageStore(tmp_path / "empty"), expected).problems
    assert (problem.code, problem.refs["photo_id"]) == ("MISSING", "photo-1")
    assert "PhotoCaptured with stored: true" in problem.detail

    # the full-ledger audit replays them and rebuilds the same read models (timeline labels included)
    assert audit(ledger).codes() == []

    # the bundle carries the photo; the offline verifier replays the types and reports them
    checkpoint_with_witnesses(ledger)
    out = tmp_path / "case.zip"
    info = export_bundle(ledger, case_id, out, with_media=True, store=store)
    assert info.media == 1
    vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    result = verify_bundle(out, VerifyOptions(vkey=vkey, trust_root=ledger.config.admin_key_id))
    assert result.verdict == "verified" and result.findings == []
    assert [row["type"] for row in result.timeline] == [
        "CaseOpened",
        "PhotoCaptured",
        "CaseClosed",
        "CaseReviewed",
    ]
    assert result.media == [{"sha256": PHOTO_SHA, "photo_id": "photo-1", "status": "verified (bundle)"}]
    case = report_json(result)["case"]
    assert case == summarize(view)  # the verifier and the service project the case alike
    assert (case["status"], case["version"], case["footage"][0]["footage_id"]) == ("closed", 4, "photo-1")
    text = render_text(result)
    assert "footage photo-1: eligible" in text and f"{PHOTO_SHA} photo-1: verified (bundle)" in text
    assert "PhotoCaptured" in text and "CaseReviewed" in text and NOTE not in text
    page = render_html(result)
    assert "photo-1" in page and "CaseReviewed" in page and NOTE not in page


# --- what registration refuses ------------------------------------------------------------------------


def test_registration_refuses_an_incomplete_or_clashing_declaration(tmp_path: Path) -> None:
    def effect(state: Any, *_: Any) -> Any:
        return state

    def declare(name: str, **rules: Any) -> type[Event]:
        namespace: dict[str, Any] = {
            "__annotations__": {"TYPE": ClassVar[str], "RULES": ClassVar[Rules], "case_ref": str},
            "__module__": __name__,
            "TYPE": name,
            "RULES": Rules(**{"roles": frozenset({"auditor"}), "effect": effect, **rules}),
        }
        return dataclass(frozen=True, kw_only=True, slots=True)(type(name, (Event,), namespace))

    label = {"label": lambda b: "x"}
    with pytest.raises(TypeError, match="already registered"):
        register(declare("CaseOpened", **label))
    with pytest.raises(TypeError, match="unknown role"):
        register(declare("Unheard", **label, roles=frozenset({"janitor"})))
    with pytest.raises(TypeError, match="fields it does not have"):
        register(declare("Unheard", **label, refs=("nope",)))
    with pytest.raises(TypeError, match="fields it does not have"):
        register(declare("Unheard", **label, custody=Custody(footage_field="case_ref", to_field="nope")))
    with pytest.raises(TypeError, match="chain of custody"):
        register(declare("Unheard", **label, stream="registry", custody=Custody(footage_field="case_ref", to_field="case_ref")))
    misnamed = declare("Misnamed", **label)
    misnamed.TYPE = "SomethingElse"
    with pytest.raises(TypeError, match="equal its"):
        register(misnamed)
    with pytest.raises(TypeError, match="RULES"):

        @register
        @dataclass(frozen=True, kw_only=True, slots=True)
        class Undeclared(Event):
            TYPE: ClassVar[str] = "Undeclared"

    with pytest.raises(TypeError, match="not registered"):
        unregister(declare("Unheard", **label))
    assert EVENT_TYPES == ORIGINAL_TYPES


def test_unregistered_types_are_unknown_again(tmp_path: Path) -> None:
    module = load_module(tmp_path)
    photo = parse_body("PhotoCaptured", 1, photo_body())
    unregister(module.PhotoCaptured)
    unregister(module.CaseReviewed)
    assert EVENT_TYPES == ORIGINAL_TYPES and "CaseReviewed" not in ALLOWED["auditor"]
    with pytest.raises(InvalidEventError) as info:
        parse_body("PhotoCaptured", 1, photo_body())
    assert info.value.code == "UNKNOWN_EVENT_TYPE"
    with pytest.raises(RuleViolation) as refused:  # an event of a type no longer registered
        apply(apply(None, ev("CaseOpened"), ctx(0)), photo, ctx(1, role="investigator"))
    assert refused.value.code == "WRONG_STREAM"
    assert body("CaseOpened")["case_number"]  # the usual types are untouched
