"""verify.html in a real browser: the same verdict and finding codes as `evidence-ledger verify --json`.

Each bundle is checked twice, by the command (in a fresh interpreter, ``tests.support.bundles.verify``)
and by the page in headless Chromium, opened from file:// and served at /verify by a real server; the
page must connect nowhere (``page.outside``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.envelope.canonical import canonical
from ledger.evidence.footage import FootageStore
from ledger.log import note
from ledger.log.access_entry import DENIED, AccessRecord
from ledger.log.proof_json import inclusion_proof_json
from ledger.store import Ledger
from ledger.verify import web
from ops.procs import Server, serving
from tests.support.browser import VERIFY_PAGE, VerifierPage
from tests.support.bundles import (
    Exported,
    Forger,
    Members,
    case_indexes,
    codes,
    drop_entry,
    export_scenario,
    flip_sig,
    forged,
    index_of,
    read_members,
    refresh_manifest,
    run_verify,
    statement,
    tampered,
    write_members,
)
from tests.support.cases import (
    FOOTAGE_BYTES,
    FOOTAGE_SHA,
    footage_captured,
    footage_released,
    hold_placed,
    incident_documented,
    new_case_id,
    referral_made,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def exported(ledger: Ledger, tmp_path: Path) -> Exported:
    return export_scenario(ledger, tmp_path / "case.zip")


@pytest.fixture
def server(ledger: Ledger, tmp_path: Path) -> Iterator[Server]:
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir), "PYTHONPATH": str(ROOT)}
    with serving(env, tmp_path / "server.log") as running:
        yield running


def pinned(exported: Exported) -> dict[str, str]:
    return {"vkey": exported.log_vkey, "trust_root": exported.trust_root}


def cli_args(pins: dict[str, str]) -> list[str]:
    args = []
    if pins.get("vkey"):
        args += ["--vkey", pins["vkey"]]
    if pins.get("trust_root"):
        args += ["--trust-root", pins["trust_root"]]
    for witness in pins.get("witnesses", "").split():
        args += ["--witness", witness]
    if pins.get("min_witnesses"):
        args += ["--min-witnesses", pins["min_witnesses"]]
    return args


def same_as_cli(verifier: VerifierPage, bundle: Path, pins: dict[str, str]) -> tuple[str, set[str]]:
    """Check ``bundle`` with the page and the command; they must agree. Returns (verdict, codes)."""
    result = run_verify(str(bundle), "--json", *cli_args(pins))
    assert result.returncode in (0, 1, 4) and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    verdict, found = verifier.check(bundle, **pins)
    assert (verdict, set(found)) == (report["verdict"], codes(report)), report["findings"]
    assert len(found) == len(report["findings"])
    rows = verifier.page.query_selector_all("#findings-body tr") if found else []
    shown = sorted((row.get_attribute("data-code"), row.get_attribute("data-rule") or "") for row in rows)
    given = sorted((f["code"], f.get("evidence", {}).get("rule", "")) for f in report["findings"])
    assert shown == given  # a rule violation names the same rule (evidence.rule of --json)
    return verdict, set(found)


# --- tampering -----------------------------------------------------------------------------------


def _last(m: Members, e: Exported) -> int:
    return case_indexes(m, e.case_id)[-1]


def flipped_signature_byte(e: Exported, tmp: Path) -> Path:
    return tampered(e.path, tmp / "flipped.zip", lambda m: flip_sig(m, _last(m, e)))


def flipped_and_resigned_tree(e: Exported, tmp: Path) -> Path:
    def build(f: Forger) -> None:
        last = _last(f.members, e)
        copy = dict(f.members)
        flip_sig(copy, last)
        f.replace(last, copy[f"envelopes/{last}.json"])

    return forged(e, tmp, build)


def manifest_mismatch(e: Exported, tmp: Path) -> Path:
    return tampered(e.path, tmp / "manifest.zip", lambda m: flip_sig(m, _last(m, e)), manifest=False)


def wrong_inclusion_proof(e: Exported, tmp: Path) -> Path:
    def change(m: Members) -> None:
        second = case_indexes(m, e.case_id)[1]
        proof = json.loads(m[f"proofs/{second}.json"])
        proof["audit_path"][0] = base64.b64encode(b"\x07" * 32).decode()
        m[f"proofs/{second}.json"] = canonical(proof)

    return tampered(e.path, tmp / "proof.zip", change)


def swapped_checkpoint(e: Exported, tmp: Path) -> Path:
    """The checkpoint of a longer log (one more entry), genuinely signed by the log key."""
    longer = read_members(
        forged(e, tmp, lambda f: f.append(f.next_envelope("supervisor", "CaseReopened", {"reason": "x"})))
    )
    return tampered(
        e.path, tmp / "swapped.zip", lambda m: m.update({"checkpoint.txt": longer["checkpoint.txt"]})
    )


def checkpoint_signed_by_another_key(e: Exported, tmp: Path) -> Path:
    def change(m: Members) -> None:
        body = note.open_note(m["checkpoint.txt"])[0]
        m["checkpoint.txt"] = note.sign_note(body, e.ledger.config.log_key_name, Ed25519PrivateKey.generate())

    return tampered(e.path, tmp / "foreign.zip", change)


def removed_event(e: Exported, tmp: Path) -> Path:
    return tampered(e.path, tmp / "removed.zip", lambda m: drop_entry(m, case_indexes(m, e.case_id)[1]))


def removed_last_event(e: Exported, tmp: Path) -> Path:
    return tampered(e.path, tmp / "truncated.zip", lambda m: drop_entry(m, _last(m, e)))


def edited_leaf(e: Exported, tmp: Path) -> Path:
    def change(m: Members) -> None:
        first = case_indexes(m, e.case_id)[0]
        leaf = json.loads(m[f"leaves/{first}.json"])
        leaf["envelope_sha256"] = "0" * 64
        m[f"leaves/{first}.json"] = canonical(leaf)

    return tampered(e.path, tmp / "leaf.zip", change)


def role_not_allowed(e: Exported, tmp: Path) -> Path:
    return forged(
        e, tmp, lambda f: f.append(f.next_envelope("prosecutor", "CaseReopened", {"reason": "new evidence"}))
    )


def event_on_a_closed_case(e: Exported, tmp: Path) -> Path:
    return forged(
        e, tmp, lambda f: f.append(f.next_envelope("supervisor", "CaseClosed", {"disposition": "x"}))
    )


def broken_chain(e: Exported, tmp: Path) -> Path:
    return forged(
        e,
        tmp,
        lambda f: f.append(f.next_envelope("supervisor", "CaseReopened", {"reason": "x"}, prev="ab" * 32)),
    )


def non_canonical_envelope(e: Exported, tmp: Path) -> Path:
    def change(m: Members) -> None:
        last = _last(m, e)
        m[f"envelopes/{last}.json"] = json.dumps(json.loads(m[f"envelopes/{last}.json"]), indent=1).encode()

    return tampered(e.path, tmp / "spaces.zip", change)


def altered_receipt(e: Exported, tmp: Path) -> Path:
    def change(m: Members) -> None:
        name = f"receipts/{case_indexes(m, e.case_id)[0]}.txt"
        m[name] = m[name].replace(b"\n300\n", b"\n3000\n")

    return tampered(e.path, tmp / "receipt.zip", change)


def checkpoint_as_a_receipt(e: Exported, tmp: Path) -> Path:
    return tampered(
        e.path, tmp / "cp-receipt.zip", lambda m: m.update({f"receipts/{case_indexes(m, e.case_id)[0]}.txt": m["checkpoint.txt"]})
    )


def receipt_of_another_leaf(e: Exported, tmp: Path) -> Path:
    def change(m: Members) -> None:
        first, second = case_indexes(m, e.case_id)[:2]
        m[f"receipts/{first}.txt"] = m[f"receipts/{second}.txt"]
        del m[f"receipts/{second}.txt"]

    return tampered(e.path, tmp / "swapped-receipt.zip", change)


TAMPERED: dict[str, tuple[Callable[[Exported, Path], Path], set[str]]] = {
    "flipped signature byte": (flipped_signature_byte, {"BAD_SIGNATURE", "LEAF_MISMATCH"}),
    "flipped signature, tree re-signed": (flipped_and_resigned_tree, {"BAD_SIGNATURE"}),
    "manifest mismatch": (manifest_mismatch, {"MANIFEST_MISMATCH", "BAD_SIGNATURE", "LEAF_MISMATCH"}),
    "wrong inclusion proof": (wrong_inclusion_proof, {"BAD_INCLUSION"}),
    "swapped checkpoint": (swapped_checkpoint, {"BAD_INCLUSION"}),
    "checkpoint signed by another key": (checkpoint_signed_by_another_key, {"BAD_CHECKPOINT"}),
    "removed event": (removed_event, {"SEQ_GAP"}),
    "removed last event": (removed_last_event, {"SEQ_GAP"}),
    "edited leaf": (edited_leaf, {"LEAF_MISMATCH", "BAD_INCLUSION", "BAD_RECEIPT"}),
    "altered receipt": (altered_receipt, {"BAD_RECEIPT"}),
    "checkpoint as a receipt": (checkpoint_as_a_receipt, {"BAD_RECEIPT"}),
    "receipt of another leaf, one missing": (receipt_of_another_leaf, {"BAD_RECEIPT"}),
    "role not allowed": (role_not_allowed, {"ROLE_NOT_ALLOWED"}),
    "event on a closed case": (event_on_a_closed_case, {"RULE_VIOLATION"}),
    "broken chain": (broken_chain, {"CHAIN_BREAK"}),
    "non-canonical envelope": (non_canonical_envelope, {"NON_CANONICAL", "LEAF_MISMATCH"}),
}


# --- check 10: events signed by registered keys that break a rule of the case ----------------------

#: one step of a forged continuation: (who signs, event type, body or a function of the forger giving it)
Step = tuple[str, str, "dict[str, Any] | Callable[[Forger], dict[str, Any]]"]
REOPEN: Step = ("supervisor", "CaseReopened", {"reason": "new evidence"})


def _sealed_ref(f: Forger) -> str:
    """The sealed record the scenario's report brought into the case."""
    index = index_of(f.members, lambda st: st["type"] == "ReportReceived")
    ref: str = statement(f.members[f"envelopes/{index}.json"])["body"]["reporter"]["sealed_ref"]
    return ref


def _request(who_asks: str = "supervisor") -> list[Step]:
    body = lambda f: {"request_id": "dsc-1", "sealed_ref": _sealed_ref(f), "purpose": "p", "legal_basis": "b"}  # noqa: E731
    return [(who_asks, "SealedDisclosureRequested", body)]


RULE_BREAKING: dict[str, tuple[list[Step], list[str]]] = {
    "release while a hold is active": (
        [
            REOPEN,
            ("investigator", "InvestigationHoldPlaced", hold_placed("hold-2")),
            ("supervisor", "FootageReleased", footage_released()),
        ],
        ["RELEASE_UNDER_HOLD"],
    ),
    "referral to an authority that is not configured": (
        [
            REOPEN,
            ("investigator", "ReferralMade", {**referral_made(), "referral_id": "ref-2", "authority": "fbi"}),
        ],
        ["AUTHORITY_NOT_CONFIGURED"],
    ),
    "acknowledgement by a prosecutor of another authority": (
        [
            REOPEN,
            (
                "investigator",
                "ReferralMade",
                {**referral_made(), "referral_id": "ref-2", "authority": "massachusetts_ag"},
            ),
            ("prosecutor", "ReferralAcknowledged", {"referral_id": "ref-2", "note": "Received"}),
        ],
        ["REFERRAL_AUTHORITY_MISMATCH"],
    ),
    "an ordinary event on a closed case": (
        [("investigator", "FootageCaptured", footage_captured("ftg-2"))],
        ["CASE_CLOSED"],
    ),
    "a field of the wrong type": (
        [REOPEN, ("investigator", "FootageCaptured", {**footage_captured("ftg-2"), "size_bytes": "6400"})],
        ["INVALID_BODY"],
    ),
    "a missing required field": ([("supervisor", "CaseReopened", {})], ["INVALID_BODY"]),
    "an invalid body outranks the signer's role": (
        [("prosecutor", "CaseReopened", {"why": "x"})],
        ["INVALID_BODY"],
    ),
    "a time's fraction in other decimal digits, compared by value": (
        [
            REOPEN,
            (
                "investigator",
                "IncidentDocumented",
                {
                    **incident_documented(),
                    "incident_id": "inc-2",
                    "occurred_from": "2026-02-05T16:55:00.9Z",
                    "occurred_to": "2026-02-05T16:55:00.\u0661Z",  # ARABIC-INDIC DIGIT ONE: .1 < .9
                },
            ),
        ],
        ["INVALID_BODY"],
    ),
    "a key registry event in the case": (
        [("investigator", "KeyRevoked", {"key_id": "ab" * 32, "reason": "x"})],
        ["WRONG_STREAM"],
    ),
    "an unknown event type": ([("investigator", "CaseTeleported", {})], ["UNKNOWN_EVENT_TYPE"]),
    "a custody transfer by someone who is not the custodian": (
        [
            REOPEN,
            (
                "investigator",
                "CustodyTransferred",
                {
                    "footage_id": "ftg-1",
                    "from_custodian": "Det. A. Rivera",
                    "to_custodian": "DA",
                    "purpose": "p",
                },
            ),
        ],
        ["CUSTODY_MISMATCH"],
    ),
    "a disclosure approved by the person who asked": (
        [*_request(), ("supervisor", "SealedDisclosureApproved", {"request_id": "dsc-1"})],
        ["SAME_PERSON"],
    ),
    "several refusals, and events after them still checked": (
        [
            ("supervisor", "CaseReopened", {"reason": "x"}),
            ("supervisor", "CaseReopened", {"reason": "twice"}),
            ("investigator", "FootageCaptured", footage_captured("ftg-1")),
            ("supervisor", "FootageReleased", {**footage_released(), "derivative_id": "nope"}),
            ("investigator", "InvestigationHoldPlaced", hold_placed("hold-3", ["ftg-9"])),
            ("supervisor", "InvestigationHoldLifted", {"hold_id": "hold-1", "reason": "again"}),
            (
                "investigator",
                "IncidentDocumented",
                {**incident_documented(), "occurred_to": "2026-02-05T16:00:00Z"},
            ),
        ],
        [
            "CASE_NOT_CLOSED",
            "DUPLICATE_ID",
            "UNKNOWN_DERIVATIVE",
            "UNKNOWN_FOOTAGE",
            "HOLD_NOT_ACTIVE",
            "INVALID_BODY",
        ],
    ),
}

#: a continuation every rule accepts: the page must not refuse what the command accepts either
ACCEPTED: list[Step] = [
    REOPEN,
    (
        "investigator",
        "IncidentDocumented",
        {
            **incident_documented(),
            "incident_id": "inc-2",
            "occurred_from": "2026-02-05T16:55:00.1Z",
            "occurred_to": "2026-02-05T16:55:00.\u0669Z",  # ARABIC-INDIC DIGIT NINE, as Python's \d reads it
        },
    ),
    (
        "investigator",
        "CustodyTransferred",
        {"footage_id": "ftg-1", "from_custodian": "CPD Evidence Unit", "to_custodian": "DA", "purpose": "p"},
    ),
    ("investigator", "InvestigationHoldPlaced", hold_placed("hold-2", ["ftg-1"])),
    ("supervisor", "InvestigationHoldLifted", {"hold_id": "hold-2", "reason": "done"}),
    ("investigator", "ReferralMade", {**referral_made(), "referral_id": "ref-2", "bundle_sha256": None}),
    ("prosecutor", "ReferralAcknowledged", {"referral_id": "ref-2", "note": ""}),
    *_request("investigator"),
    ("supervisor", "SealedDisclosureApproved", {"request_id": "dsc-1"}),
    (
        "investigator",
        "SealedRecordDisclosed",
        lambda f: {"request_id": "dsc-1", "sealed_ref": _sealed_ref(f), "approvers": ["Sgt. B. Chen"]},
    ),
    ("supervisor", "SealedRecordShredded", lambda f: {"sealed_ref": _sealed_ref(f), "reason": "retention"}),
    ("supervisor", "CaseClosed", {"disposition": "done"}),
]


def continued(e: Exported, tmp: Path, steps: list[Step]) -> Path:
    """The scenario's bundle with ``steps`` appended, each signed by the scenario's registered key."""

    def build(f: Forger) -> None:
        for who, event_type, body in steps:
            f.append(f.next_envelope(who, event_type, body(f) if callable(body) else body))

    return forged(e, tmp, build)


@pytest.mark.parametrize("name", list(RULE_BREAKING))
def test_a_signed_event_that_breaks_a_rule_fails_as_in_the_cli(
    verifier_file: VerifierPage, exported: Exported, tmp_path: Path, name: str
) -> None:
    steps, rules = RULE_BREAKING[name]
    bundle = continued(exported, tmp_path, steps)
    assert same_as_cli(verifier_file, bundle, pinned(exported)) == ("failed", {"RULE_VIOLATION"})
    shown = [
        row.get_attribute("data-rule") for row in verifier_file.page.query_selector_all("#findings-body tr")
    ]
    assert shown == rules
    assert verifier_file.page.outside == []


def test_signed_events_that_keep_every_rule_verify_as_in_the_cli(
    verifier_file: VerifierPage, exported: Exported, tmp_path: Path
) -> None:
    bundle = continued(exported, tmp_path, ACCEPTED)
    assert same_as_cli(verifier_file, bundle, pinned(exported)) == ("verified", set())


def test_the_manifest_s_configuration_is_the_one_the_rules_use(
    verifier_file: VerifierPage, exported: Exported, tmp_path: Path
) -> None:
    """No authorities (an empty list) means the default ones, as for the command; the disclosure window
    is the manifest's."""

    def build(f: Forger) -> None:
        manifest = json.loads(f.members["manifest.json"])
        f.members["manifest.json"] = json.dumps(
            {**manifest, "authorities": [], "disclosure_window_seconds": 60}
        ).encode()
        ((who, event_type, body),) = _request("investigator")
        f.append(f.next_envelope(who, event_type, body(f) if callable(body) else body))
        f.exported.ledger.clock.advance(seconds=61)  # type: ignore[attr-defined]
        f.append(f.next_envelope("supervisor", "SealedDisclosureApproved", {"request_id": "dsc-1"}))

    bundle = forged(exported, tmp_path, build)
    assert same_as_cli(verifier_file, bundle, pinned(exported)) == ("failed", {"RULE_VIOLATION"})
    shown = [
        row.get_attribute("data-rule") for row in verifier_file.page.query_selector_all("#findings-body tr")
    ]
    assert shown == ["REQUEST_EXPIRED"]


# --- the page from file:// ----------------------------------------------------------------------


def test_a_clean_bundle_is_verified_with_the_right_pins(
    verifier_file: VerifierPage, exported: Exported
) -> None:
    assert same_as_cli(verifier_file, exported.path, pinned(exported)) == ("verified", set())
    assert verifier_file.page.inner_text("#verdict") == "VERIFIED"
    assert verifier_file.page.outside == []


def test_without_pins_it_is_unpinned_never_verified(verifier_file: VerifierPage, exported: Exported) -> None:
    assert same_as_cli(verifier_file, exported.path, {}) == ("unpinned", set())
    assert verifier_file.page.inner_text("#verdict") == "UNPINNED"
    only_root = {"trust_root": exported.trust_root}
    assert same_as_cli(verifier_file, exported.path, only_root) == ("unpinned", set())
    assert verifier_file.page.outside == []


def test_a_wrong_trust_root_is_the_same_finding_as_the_cli(
    verifier_file: VerifierPage, exported: Exported
) -> None:
    wrong = {**pinned(exported), "trust_root": "0" * 64}
    assert same_as_cli(verifier_file, exported.path, wrong) == ("failed", {"UNKNOWN_KEY"})
    other = note.make_verifier_key(
        exported.ledger.config.log_key_name, Ed25519PrivateKey.generate().public_key()
    )
    assert same_as_cli(verifier_file, exported.path, {**pinned(exported), "vkey": str(other)}) == (
        "failed",
        {"BAD_CHECKPOINT"},
    )
    assert verifier_file.page.outside == []


@pytest.mark.parametrize("name", list(TAMPERED))
def test_a_tampered_bundle_gives_the_cli_codes(
    verifier_file: VerifierPage, exported: Exported, tmp_path: Path, name: str
) -> None:
    make, expected = TAMPERED[name]
    bundle = make(exported, tmp_path)
    assert same_as_cli(verifier_file, bundle, pinned(exported)) == ("failed", expected)
    assert verifier_file.page.inner_text("#verdict") == "FAILED"
    assert verifier_file.page.outside == []


def test_a_malformed_pin_gets_no_verdict(verifier_file: VerifierPage, exported: Exported) -> None:
    """As the command exits 2 on a malformed --trust-root or --vkey, the page names the field and gives no verdict."""
    for pins, says in (
        ({"trust_root": "ABC"}, "The trust root is a key id"),
        ({"vkey": "not a key"}, "The log verifier key cannot be read"),
        ({"witnesses": exported.log_vkey}, "A witness key must be a cosignature/v1 key"),
    ):
        result = run_verify(str(exported.path), "--json", *cli_args(pins))
        assert result.returncode == 2, result.stdout
        assert verifier_file.check(exported.path, **pins) == ("unusable", [])
        assert says in verifier_file.page.inner_text("#verdict-text")


def test_a_file_that_is_no_bundle_gets_no_verdict(verifier_file: VerifierPage, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    assert run_verify(str(junk), "--json").returncode == 2  # the command: unusable input
    verdict, found = verifier_file.check(junk)
    assert (verdict, found) == ("unusable", [])
    assert "cannot be used as a bundle" in verifier_file.page.inner_text("#verdict-text")


def test_the_copy_inside_the_bundle_is_this_page(exported: Exported) -> None:
    assert read_members(exported.path)["verify.html"] == web.page_bytes()


NO_WEBCRYPTO_ED25519 = (
    "const real = crypto.subtle.importKey.bind(crypto.subtle);"
    "crypto.subtle.importKey = (f, k, alg, ...rest) => (alg && alg.name === 'Ed25519')"
    " ? Promise.reject(new DOMException('unsupported', 'NotSupportedError')) : real(f, k, alg, ...rest);"
    "const realVerify = crypto.subtle.verify.bind(crypto.subtle);"
    "crypto.subtle.verify = (alg, ...rest) => (alg && (alg === 'Ed25519' || alg.name === 'Ed25519'))"
    " ? Promise.reject(new DOMException('unsupported', 'NotSupportedError')) : realVerify(alg, ...rest);"
)


@pytest.fixture
def verifier_without_webcrypto_ed25519(page: Any) -> VerifierPage:
    """verify.html from file:// in a browser whose WebCrypto refuses Ed25519 (NotSupportedError)."""
    page.add_init_script(NO_WEBCRYPTO_ED25519)
    verifier = VerifierPage(page, VERIFY_PAGE.as_uri()).open()
    assert page.get_attribute("body", "data-ready") == "yes" and page.is_visible("#bundle")
    assert page.get_attribute("#ed25519-impl", "data-impl") == "noble"
    return verifier


def test_without_webcrypto_ed25519_the_vendored_library_gives_the_cli_verdicts(
    verifier_without_webcrypto_ed25519: VerifierPage, exported: Exported, tmp_path: Path
) -> None:
    verifier = verifier_without_webcrypto_ed25519
    page = verifier.page
    assert same_as_cli(verifier, exported.path, pinned(exported)) == ("verified", set())
    assert page.inner_text("#verdict") == "VERIFIED"
    assert page.get_attribute("#signatures-by", "data-impl") == "noble"
    assert "vendored @noble/ed25519 3.2.0" in page.inner_text("#signatures-by")
    assert "no WebCrypto Ed25519" in page.inner_text("#signatures-by")
    for name in (
        "flipped signature byte",
        "flipped signature, tree re-signed",
        "checkpoint signed by another key",
        "manifest mismatch",
        "role not allowed",
    ):
        make, expected = TAMPERED[name]
        assert same_as_cli(verifier, make(exported, tmp_path), pinned(exported)) == ("failed", expected)
    wrong_vkey = note.make_verifier_key(
        exported.ledger.config.log_key_name, Ed25519PrivateKey.generate().public_key()
    )
    assert same_as_cli(verifier, exported.path, {**pinned(exported), "vkey": str(wrong_vkey)}) == (
        "failed",
        {"BAD_CHECKPOINT"},
    )
    assert page.outside == []


def test_with_webcrypto_ed25519_the_browser_checks_the_signatures(
    verifier_file: VerifierPage, exported: Exported
) -> None:
    assert same_as_cli(verifier_file, exported.path, pinned(exported)) == ("verified", set())
    assert verifier_file.page.get_attribute("#signatures-by", "data-impl") == "webcrypto"
    assert "this browser's WebCrypto" in verifier_file.page.inner_text("#signatures-by")


def test_when_no_implementation_passes_the_rfc_8032_test_there_is_no_verdict(page: Any) -> None:
    """A WebCrypto that imports Ed25519 keys but verifies wrongly is not replaced: no verdict."""
    page.add_init_script(
        "crypto.subtle.verify = (alg, ...rest) => Promise.resolve(true);"  # accepts every signature
    )
    VerifierPage(page, VERIFY_PAGE.as_uri()).open()
    assert page.get_attribute("body", "data-ready") == "unsupported"
    assert "This browser cannot check Ed25519 signatures" in page.inner_text("#unsupported")
    assert not page.is_visible("#bundle")


def test_without_deflate_raw_there_is_no_verdict(page: Any) -> None:
    page.add_init_script(
        "const Real = DecompressionStream;"
        "window.DecompressionStream = function (format) {"
        " if (format === 'deflate-raw') throw new TypeError('unsupported'); return new Real(format); };"
    )
    VerifierPage(page, VERIFY_PAGE.as_uri()).open()
    assert page.get_attribute("body", "data-ready") == "unsupported"
    assert "This browser cannot read zip files" in page.inner_text("#unsupported-zip")
    assert not page.is_visible("#bundle")


# --- the page served at /verify ------------------------------------------------------------------


def test_the_served_page_has_its_policy_as_a_header_and_verifies(
    page: Any, server: Server, exported: Exported, tmp_path: Path
) -> None:
    response = httpx.get(f"{server.url}/verify", timeout=30)
    assert response.status_code == 200 and response.content == web.page_bytes()
    policy = response.headers["content-security-policy"]
    assert (
        "connect-src 'none'" in policy
        and web.script_hash() in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    verifier = VerifierPage(page, f"{server.url}/verify").open()
    assert same_as_cli(verifier, exported.path, pinned(exported)) == ("verified", set())
    assert same_as_cli(verifier, exported.path, {}) == ("unpinned", set())
    for name in ("flipped signature byte", "manifest mismatch", "swapped checkpoint", "removed event"):
        make, expected = TAMPERED[name]
        assert same_as_cli(verifier, make(exported, tmp_path), pinned(exported)) == ("failed", expected)
    assert page.outside == []


def test_the_page_cannot_connect_anywhere(page: Any, server: Server) -> None:
    """The policy blocks a request even to the server the page came from."""
    VerifierPage(page, f"{server.url}/verify").open()
    blocked = page.evaluate("fetch('/healthz').then(() => 'connected', () => 'blocked')")
    assert blocked == "blocked"


# --- the page's own consistency ------------------------------------------------------------------


def test_the_policy_allows_exactly_the_inline_script() -> None:
    page = web.page_bytes()
    assert web.with_script_hash(page) == page, "run `python -m ledger.verify.web` after editing the script"
    vendored = web.vendored_script()
    own = page.replace(vendored, b"")
    assert b"http://" not in own and b"https://" not in own and b" src=" not in own
    licence = (web.VENDOR_DIR / "LICENSE").read_bytes()
    for line in vendored.splitlines():  # the vendored code names addresses only in comments
        assert b"://" not in line or line.lstrip().startswith(b"//") or line in licence, line


def test_the_page_inlines_the_pinned_vendored_library_and_its_licence() -> None:
    page = web.page_bytes()
    assert web.with_vendored(page) == page, "run `python -m ledger.verify.web` after updating the vendored code"
    licence = (web.VENDOR_DIR / "LICENSE").read_bytes()
    assert hashlib.sha256(licence).hexdigest() == web.VENDORED["LICENSE"]
    assert licence.rstrip() in page and b"Copyright (c) 2019 Paul Miller" in page
    module = (web.VENDOR_DIR / "index.js").read_bytes()
    assert hashlib.sha256(module).hexdigest() == web.VENDORED["index.js"]
    body, export = module.rstrip(b"\n").rsplit(b"\n", 1)
    assert export.startswith(b"export {") and body in page  # all but the last line, byte for byte
    assert b"\nexport " not in page.split(b"<script>", 1)[1]


def test_the_page_s_tables_are_generated_from_the_domain() -> None:
    from domain.events import EVENT_TYPES
    from domain.vocabulary import ROLES

    page = web.page_bytes()
    assert web.with_domain_tables(page) == page, (
        "run `python -m ledger.verify.web` after changing an event type"
    )
    text = page.decode("utf-8")
    table = json.loads(text.split("const EVENT_TYPES = ", 1)[1].split(";\n", 1)[0])
    assert {
        name: [t["version"], t["roles"], t["stream"], t["opens"], t["when_closed"], t["effect"]]
        for name, t in table.items()
    } == {
        name: [
            cls.VERSION,
            sorted(cls.RULES.roles),
            cls.RULES.stream,
            bool(cls.RULES.opens),
            bool(cls.RULES.when_closed),
            cls.RULES.effect.__name__,
        ]
        for name, cls in EVENT_TYPES.items()
    }
    assert table["FootageReleased"]["fields"][1][:2] == ["derivative_id", True]  # optional
    media = {name: cls.RULES.media for name, cls in EVENT_TYPES.items() if cls.RULES.media is not None}
    shown = json.loads(text.split("const MEDIA_TYPES = ", 1)[1].split(";", 1)[0])
    assert shown == {name: [m.id_field, m.sha256_field] for name, m in media.items()}
    roles = json.loads(text.split("const ROLES = ", 1)[1].split(";", 1)[0])
    assert roles == sorted(ROLES)


# --- access log, media and witnesses -------------------------------------------------------------

TOKEN_ID = "0123456789abcdef"  # noqa: S105 - a token's public id, not a secret


def test_a_format_2_bundle_verifies_as_in_the_cli(verifier_file: VerifierPage, exported: Exported, tmp_path: Path) -> None:
    def downgrade(m: Members) -> None:
        for name in [n for n in m if n.startswith("receipts/")]:
            del m[name]
        manifest = json.loads(m["manifest.json"])
        manifest["format"] = "evidence-ledger-bundle/2"
        m["manifest.json"] = json.dumps(manifest).encode()

    assert same_as_cli(verifier_file, tampered(exported.path, tmp_path / "v2.zip", downgrade), pinned(exported)) == (
        "verified", set()
    )


def test_access_entries(verifier_file: VerifierPage, ledger: Ledger, tmp_path: Path) -> None:
    other = new_case_id()

    def reads(_: object, case_id: str) -> None:
        def read(case: str, action: str = "case.read", **fields: Any) -> AccessRecord:
            return AccessRecord(
                action=action,
                actor="Det. A. Rivera",
                role="investigator",
                token_id=TOKEN_ID,
                case_id=case,
                request_id="req-00000001",
                **fields,
            )

        ledger.access_log.append(
            [
                read(case_id),
                read(other),
                read(case_id, "evidence.download", item="a" * 64),
                read(case_id, outcome=DENIED, code="CASE_NOT_FOUND"),
            ]
        )
        ledger.access_log.checkpoint()

    exported = export_scenario(ledger, tmp_path / "case.zip", before_export=reads)
    pins = pinned(exported)
    assert same_as_cli(verifier_file, exported.path, pins) == ("verified", set())
    flipped = tampered(
        exported.path,
        tmp_path / "a.zip",
        lambda m: m.update(
            {"access/entries/2.json": m["access/entries/2.json"].replace(b"aaaa", b"aaac", 1)}
        ),
    )
    assert same_as_cli(verifier_file, flipped, pins) == ("failed", {"BAD_ACCESS_INCLUSION"})
    swapped = tampered(
        exported.path, tmp_path / "b.zip", lambda m: m.update({"access/checkpoint.txt": m["checkpoint.txt"]})
    )
    assert same_as_cli(verifier_file, swapped, pins) == ("failed", {"BAD_ACCESS_CHECKPOINT"})
    checkpoint = ledger.access_log.latest_checkpoint()
    assert checkpoint is not None
    (stranger,) = ledger.access_log.entries(case_id=other)
    proof = ledger.access_log.inclusion_proof(stranger.index, checkpoint.size)

    def smuggle(m: Members) -> None:  # a genuine entry with a genuine proof, of another case
        m[f"access/entries/{stranger.index}.json"] = stranger.entry
        m[f"access/proofs/{stranger.index}.json"] = canonical(
            inclusion_proof_json(stranger.index, proof, tree_size=checkpoint.size)
        )
        manifest = json.loads(m["manifest.json"])
        manifest["access_entries"] += 1
        m["manifest.json"] = json.dumps(manifest).encode()

    smuggled = tampered(exported.path, tmp_path / "c.zip", smuggle)
    assert same_as_cli(verifier_file, smuggled, pins) == ("failed", {"ACCESS_ENTRY_OTHER_CASE"})
    assert verifier_file.page.outside == []


def test_media_inside_the_bundle(verifier_file: VerifierPage, ledger: Ledger, tmp_path: Path) -> None:
    FootageStore(ledger.data_dir / "footage").put_stream([FOOTAGE_BYTES])
    exported = export_scenario(ledger, tmp_path / "case.zip", with_media=True)
    assert f"media/{FOOTAGE_SHA}" in read_members(exported.path)
    assert same_as_cli(verifier_file, exported.path, pinned(exported)) == ("verified", set())

    def flip(m: Members) -> None:
        data = bytearray(m[f"media/{FOOTAGE_SHA}"])
        data[100] ^= 0x01
        m[f"media/{FOOTAGE_SHA}"] = bytes(data)

    bad = tampered(exported.path, tmp_path / "m.zip", flip)
    assert same_as_cli(verifier_file, bad, pinned(exported)) == ("failed", {"MEDIA_MISMATCH"})
    stray = tampered(exported.path, tmp_path / "s.zip", lambda m: m.update({"media/" + "ab" * 32: b"stray"}))
    assert same_as_cli(verifier_file, stray, pinned(exported)) == ("failed", {"MEDIA_MISMATCH"})


@pytest.mark.parametrize("opened", ["verifier_file", "verifier_without_webcrypto_ed25519"])
def test_witness_cosignatures(
    opened: str, request: pytest.FixtureRequest, ledger: Ledger, tmp_path: Path
) -> None:
    """With WebCrypto's Ed25519, and with the vendored library where the browser has none."""
    from ledger.witness.cosigner import Witness

    verifier_file: VerifierPage = request.getfixturevalue(opened)

    log_vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log_vkey))
    exported = export_scenario(ledger, tmp_path / "case.zip")
    members = read_members(exported.path)
    members["checkpoint.txt"] += witness.add_checkpoint(0, [], members["checkpoint.txt"], now=time.time())
    members["witnesses/w.example_w1.vkey"] = str(witness.verifier_key).encode() + b"\n"
    refresh_manifest(members)
    cosigned = write_members(members, tmp_path / "cosigned.zip")
    pins = pinned(exported)
    absent = note.make_verifier_key("w.example/absent", Ed25519PrivateKey.generate().public_key(), 0x04)
    assert same_as_cli(verifier_file, cosigned, pins) == ("verified", set())  # the bundle's witness key
    assert same_as_cli(verifier_file, cosigned, {**pins, "witnesses": str(witness.verifier_key)}) == (
        "verified",
        set(),
    )
    two = {**pins, "witnesses": f"{witness.verifier_key}\n{absent}"}
    assert same_as_cli(verifier_file, cosigned, two) == ("failed", {"WITNESS_POLICY"})
    assert same_as_cli(verifier_file, cosigned, {**two, "min_witnesses": "1"}) == ("verified", set())
    line = f"— {witness.name} ".encode()

    def corrupt(m: Members) -> None:  # one byte of the cosignature itself flipped
        rows = m["checkpoint.txt"].splitlines(keepends=True)
        at = next(i for i, row in enumerate(rows) if row.startswith(line))
        name, sig = rows[at].rsplit(b" ", 1)
        raw = bytearray(base64.b64decode(sig))
        raw[-1] ^= 0x01
        rows[at] = name + b" " + base64.b64encode(bytes(raw)) + b"\n"
        m["checkpoint.txt"] = b"".join(rows)

    bad = tampered(cosigned, tmp_path / "badcosig.zip", corrupt)
    assert same_as_cli(verifier_file, bad, pins) == ("failed", {"WITNESS_POLICY"})

    def twice(m: Members) -> None:  # a good cosignature line, then a corrupted copy of it
        good = next(row for row in m["checkpoint.txt"].splitlines(keepends=True) if row.startswith(line))
        corrupt(m)
        m["checkpoint.txt"] = m["checkpoint.txt"].replace(line, good + line, 1)

    doubled = tampered(cosigned, tmp_path / "twice.zip", twice)
    assert same_as_cli(verifier_file, doubled, pins) == ("failed", {"WITNESS_POLICY"})
    assert verifier_file.page.outside == []


# --- strict JSON and RFC 8785: the page's parser and canonical form against the project's -----------

ENVELOPE_EDITS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "duplicate key": (
        lambda raw: raw.replace(b'{"payload":', b'{"payloadType":"x","payload":', 1),
        "MALFORMED_ENTRY",
    ),
    "whitespace": (lambda raw: raw.replace(b'","payloadType"', b'", "payloadType"', 1), "NON_CANONICAL"),
    "keys out of order": (
        lambda raw: (
            b'{"payloadType"'
            + raw.split(b',"payloadType"', 1)[1][:-1].split(b',"signatures"')[0]
            + b',"payload"'
            + raw[len(b'{"payload"') :].split(b',"payloadType"', 1)[0]
            + b',"signatures"'
            + raw.split(b',"signatures"', 1)[1]
        ),
        "NON_CANONICAL",
    ),
    "escaped slash": (lambda raw: raw.replace(b"application/vnd", b"application\\/vnd", 1), "NON_CANONICAL"),
    "byte-order mark": (lambda raw: b"\xef\xbb\xbf" + raw, "MALFORMED_ENTRY"),
    "invalid UTF-8": (lambda raw: raw.replace(b'"payloadType"', b'"payloadType\xff"', 1), "MALFORMED_ENTRY"),
}
BODY_EDITS: dict[str, tuple[bytes, str]] = {  # inserted as the body's first member (key "!" sorts first)
    "float": (b'"!":1.0', "MALFORMED_ENTRY"),
    "integer beyond 2^53": (b'"!":9007199254740993', "MALFORMED_ENTRY"),
    "escaped non-ASCII letter": (b'"!":"\\u00e9"', "NON_CANONICAL"),
    "upper-case escape": (b'"!":"\\u001F"', "NON_CANONICAL"),
    "lone surrogate": (b'"!":"\\ud800"', "MALFORMED_ENTRY"),
    "keys in UTF-16 order (canonical)": ('"!":{"\U0001f600":1,"\ufb01":2}'.encode(), "BAD_SIGNATURE"),
    "keys in code point order": ('"!":{"\ufb01":2,"\U0001f600":1}'.encode(), "NON_CANONICAL"),
    "literal control character": (b'"!":"\x01"', "MALFORMED_ENTRY"),
    "deep nesting": (b'"!":' + b"[" * 70 + b"]" * 70, "MALFORMED_ENTRY"),
}


def _with_statement(raw: bytes, edit: bytes) -> bytes:
    envelope = json.loads(raw)
    statement = base64.b64decode(envelope["payload"])
    assert statement.startswith(b'{"body":{')
    statement = (
        b'{"body":{' + edit + (b"," if not statement.startswith(b'{"body":{}') else b"") + statement[9:]
    )
    envelope["payload"] = base64.b64encode(statement).decode()
    return canonical(envelope)


def test_strict_json_and_canonical_form_match_the_project_s(
    verifier_file: VerifierPage, exported: Exported, tmp_path: Path
) -> None:
    edits: dict[str, tuple[Callable[[bytes], bytes], str]] = dict(ENVELOPE_EDITS)
    edits.update(
        {
            name: ((lambda raw, e=edit: _with_statement(raw, e)), code)
            for name, (edit, code) in BODY_EDITS.items()
        }
    )
    for n, (name, (edit, code)) in enumerate(edits.items()):

        def change(m: Members, edit: Callable[[bytes], bytes] = edit) -> None:
            last = _last(m, exported)
            m[f"envelopes/{last}.json"] = edit(m[f"envelopes/{last}.json"])

        bundle = tampered(exported.path, tmp_path / f"json-{n}.zip", change)
        verdict, found = same_as_cli(verifier_file, bundle, pinned(exported))
        assert (verdict, found) == ("failed", {code, "LEAF_MISMATCH"}), name  # the edit changed the bytes


def test_time_stamps_are_hashed_but_not_checked_in_the_browser(
    verifier_file: VerifierPage, ledger: Ledger, tmp_path: Path
) -> None:
    """A format-3 bundle's ``timestamps/<n>.tsr``: the page checks it against the manifest like any
    member and says it leaves the token to the command line (with the TSA's certificate); its verdict
    is the command's without --tsa-cert."""
    from ledger.log.timestamping import configure_tsa, stamp_checkpoint
    from tests.support.tsa import TestTSA

    tsa = TestTSA(tmp_path / "tsa").start()
    try:
        configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
        exported = export_scenario(ledger, tmp_path / "plain.zip")
        checkpoint = ledger.latest_checkpoint()
        assert checkpoint is not None and stamp_checkpoint(ledger, checkpoint) == 1
        from ledger.evidence.bundle import export_bundle

        export_bundle(ledger, exported.case_id, tmp_path / "stamped.zip")
    finally:
        tsa.stop()
    stamped = tmp_path / "stamped.zip"
    assert "timestamps/0.tsr" in read_members(stamped)
    assert same_as_cli(verifier_file, stamped, pinned(exported)) == ("verified", set())
    assert "this page does not check time-stamps" in verifier_file.page.inner_text("#caveats")
    assert "--tsa-cert" in verifier_file.page.inner_text("#caveats")

    def alter(m: Members) -> None:
        token = bytearray(m["timestamps/0.tsr"])
        token[-30] ^= 0x01
        m["timestamps/0.tsr"] = bytes(token)

    unlisted = tampered(stamped, tmp_path / "altered.zip", alter, manifest=False)  # no longer its listed hash
    assert same_as_cli(verifier_file, unlisted, pinned(exported)) == ("failed", {"MANIFEST_MISMATCH"})
    relisted = tampered(stamped, tmp_path / "relisted.zip", alter)  # not judged without the TSA's certificate
    assert same_as_cli(verifier_file, relisted, pinned(exported)) == ("verified", set())
    assert verifier_file.page.outside == []
