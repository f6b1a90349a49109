"""The access log over HTTP (SQLite and PostgreSQL): every read and every refusal of a case, timeline,
chain of custody, bundle or evidence file is recorded before anything is returned; a failing access log fails closed;
downloads never take a case position; auditors read, page and prove the log."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.log import merkle, note
from ledger.log.access_entry import access_origin
from ledger.log.proof_json import parse_consistency_proof, parse_inclusion_proof
from ledger.storage.sql import StorageError
from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.audit import verifier_key
from tests.support.cases import (
    FOOTAGE_BYTES,
    FOOTAGE_SHA,
    case_opened,
    footage_captured,
    new_case_id,
    referral_made,
)


@pytest.fixture
def api(ledger: Ledger, tmp_path: Path) -> Iterator[Api]:
    (tmp_path / "bundles").mkdir()
    with running_api(ledger, tmp_dir=tmp_path / "bundles") as running:
        yield running


def stored_case(api: Api, *, referred: bool = False) -> str:
    upload = api.client.post("/v1/evidence", content=FOOTAGE_BYTES, headers=api.auth("investigator"))
    assert upload.status_code in (200, 201)
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    if referred:
        api.ok("investigator", case_id, "ReferralMade", referral_made())
    return case_id


def entries(api: Api, **filters: Any) -> list[dict[str, Any]]:
    return [json.loads(e.entry) for e in api.ledger.access_log.entries(limit=10_000, **filters)]


def last(api: Api) -> dict[str, Any]:
    return entries(api)[-1]


def get(api: Api, path: str, who: str | None, **params: Any) -> httpx.Response:
    headers = {} if who is None else api.auth(who)
    return api.client.get(path, params=params or None, headers=headers)


def recorded(api: Api, response: httpx.Response, **expected: Any) -> dict[str, Any]:
    """The newest entry is this response's (same request id) and says what ``expected`` says."""
    entry = last(api)
    assert entry["request_id"] == response.headers["x-request-id"], entry
    assert {k: entry[k] for k in expected} == expected, entry
    return entry


READS = [
    ("case.read", "/v1/cases/{case}", {}),
    ("case.read", "/v1/cases/{case}", {"as_of": "2099-01-01T00:00:00Z"}),
    ("case.events", "/v1/cases/{case}/events", {}),
    ("case.timeline", "/v1/cases/{case}/timeline", {}),
    ("case.custody", "/v1/cases/{case}/footage/ftg-1/custody", {}),
    ("case.bundle", "/v1/cases/{case}/bundle", {}),
    ("evidence.download", f"/v1/evidence/{FOOTAGE_SHA}", {"case_id": "{case}"}),
]


@pytest.mark.parametrize(("action", "path", "params"), READS, ids=[f"{a}{p}" for a, _, p in READS])
def test_every_read_route_records_the_read_and_its_refusals(
    api: Api, action: str, path: str, params: dict[str, str]
) -> None:
    case_id = stored_case(api)
    hidden_path = path.format(case=case_id)
    query = {k: v.format(case=case_id) for k, v in params.items()}
    item = {"evidence.download": FOOTAGE_SHA, "case.custody": "ftg-1"}.get(action)

    ok = get(api, hidden_path, "supervisor", **query)
    assert ok.status_code == 200, ok.text
    token_id = api.token("supervisor").split("_")[1]
    recorded(api, ok, action=action, actor="Sgt. B. Chen", role="supervisor", token_id=token_id,
             case_id=case_id, item=item, outcome="allowed", code=None)

    unauthenticated = get(api, hidden_path, None, **query)
    problem(unauthenticated, 401, "UNAUTHENTICATED")
    recorded(api, unauthenticated, action=action, actor="anonymous", role=None, token_id=None, case_id=case_id,
             outcome="denied", code="UNAUTHENTICATED")

    unknown = api.client.get(hidden_path, params=query, headers={"Authorization": "Bearer elt_" + "0" * 16 + "_x"})
    problem(unknown, 401, "UNAUTHENTICATED")
    recorded(api, unknown, actor="anonymous", outcome="denied", code="UNAUTHENTICATED", case_id=case_id)

    prosecutor = get(api, hidden_path, "prosecutor", **query)  # the case is not referred to them
    problem(prosecutor, 404, "CASE_NOT_FOUND")
    recorded(api, prosecutor, actor="ADA C. Okafor", role="prosecutor", outcome="denied", code="CASE_NOT_FOUND",
             case_id=case_id)

    missing = new_case_id()
    absent = get(api, path.format(case=missing), "supervisor", **{k: v.format(case=missing) for k, v in params.items()})
    problem(absent, 404, "CASE_NOT_FOUND")
    recorded(api, absent, outcome="denied", code="CASE_NOT_FOUND", case_id=missing)

    if action in ("case.bundle", "evidence.download"):  # routes closed to some roles
        wrong = get(api, hidden_path, "admin", **query)
        problem(wrong, 403, "ROLE_NOT_ALLOWED")
        recorded(api, wrong, actor="admin", role="admin", outcome="denied", code="ROLE_NOT_ALLOWED")


def test_lists_and_the_replay_feed_are_recorded_without_a_case(api: Api) -> None:
    listed = get(api, "/v1/cases", "investigator")
    assert listed.status_code == 200
    recorded(api, listed, action="cases.list", case_id=None, outcome="allowed")
    feed = get(api, "/v1/log/envelopes", "auditor")
    assert feed.status_code == 200
    recorded(api, feed, action="log.envelopes", actor="Auditor E. Park", outcome="allowed")
    refused = get(api, "/v1/log/envelopes", "investigator")
    problem(refused, 403, "ROLE_NOT_ALLOWED")
    recorded(api, refused, action="log.envelopes", outcome="denied", code="ROLE_NOT_ALLOWED")


class Failing:
    """An access log whose database refuses every write."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, records: Any) -> list[int]:
        self.calls += 1
        raise StorageError("database unavailable: OperationalError")


def test_a_failing_access_log_fails_closed_with_no_data(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    case_id = stored_case(api)
    failing = Failing()
    monkeypatch.setattr(api.ledger.access_log, "append", failing)
    for path, params in (
        (f"/v1/cases/{case_id}", {}),
        (f"/v1/cases/{case_id}/events", {}),
        (f"/v1/cases/{case_id}/timeline", {}),
        (f"/v1/evidence/{FOOTAGE_SHA}", {"case_id": case_id}),
        (f"/v1/cases/{case_id}/bundle", {}),
        (f"/v1/cases/{new_case_id()}", {}),  # a denial that cannot be recorded fails closed too
    ):
        response = get(api, path, "supervisor", **params)
        problem(response, 503, "ACCESS_LOG_UNAVAILABLE")
        assert case_id not in response.text and FOOTAGE_BYTES not in response.content
        assert b"CPD-2026" not in response.content and "PK" not in response.text[:2]
    assert failing.calls == 6
    monkeypatch.undo()
    assert get(api, f"/v1/cases/{case_id}", "supervisor").status_code == 200  # recovers once it can write


def test_downloads_never_conflict_with_appends(api: Api) -> None:
    """Downloads used to take the case's next position (7 of 20 appends gave up after 10 tries with 409)."""
    case_id = stored_case(api)
    events = 12
    # Pre-signed for seq 3, 4, ...: any position taken by a download would make one of them 409.
    version, prev = api.ledger.case_head(case_id)
    chain = []
    for i in range(events):
        body = {"footage_id": "ftg-1", "from_custodian": "CPD Evidence Unit" if i == 0 else f"c{i}",
                "to_custodian": f"c{i + 1}", "purpose": "review"}
        raw = api.envelope("investigator", case_id, "CustodyTransferred", body, seq=version + 1 + i, prev=prev)
        chain.append(raw)
        prev = hashlib.sha256(raw).hexdigest()

    def append_all() -> list[int]:
        return [api.post_raw(case_id, raw, "investigator").status_code for raw in chain]

    def download(_: int) -> int:
        response = get(api, f"/v1/evidence/{FOOTAGE_SHA}", "supervisor", case_id=case_id)
        assert response.content == FOOTAGE_BYTES
        return response.status_code

    with ThreadPoolExecutor(6) as pool:
        appended = pool.submit(append_all)
        fetched = list(pool.map(download, range(20), timeout=120))
        assert appended.result(timeout=120) == [201] * events
    assert fetched == [200] * 20
    assert api.ledger.case_head(case_id)[0] == 2 + events
    assert len([e for e in entries(api, case_id=case_id) if e["action"] == "evidence.download"]) == 20


def test_auditors_read_filter_and_page_the_access_log(api: Api) -> None:
    case_id, other = stored_case(api), stored_case(api)
    for who in ("investigator", "supervisor", "investigator"):
        assert get(api, f"/v1/cases/{case_id}", who).status_code == 200
    assert get(api, f"/v1/cases/{other}", "investigator").status_code == 200

    for who in ("investigator", "supervisor", "prosecutor", "admin"):
        refused = get(api, "/v1/access-log", who)
        problem(refused, 403, "ROLE_NOT_ALLOWED")
        recorded(api, refused, action="access_log.read", outcome="denied", code="ROLE_NOT_ALLOWED")

    page = get(api, "/v1/access-log", "auditor", case_id=case_id, actor="Det. A. Rivera", limit="1")
    assert page.status_code == 200
    first = page.json()
    assert len(first["items"]) == 1 and first["next"] == first["items"][0]["leaf_index"]
    recorded(api, page, action="access_log.read", actor="Auditor E. Park", case_id=case_id, outcome="allowed")
    rest = get(api, "/v1/access-log", "auditor", case_id=case_id, actor="Det. A. Rivera", cursor=str(first["next"]))
    items = first["items"] + rest.json()["items"]
    assert rest.json()["next"] is None
    assert [i["entry"]["actor"] for i in items] == ["Det. A. Rivera"] * 2
    assert all(i["entry"]["case_id"] == case_id and i["entry"]["action"] == "case.read" for i in items)
    assert all(i["entry"]["index"] == i["leaf_index"] and json.loads(i["leaf"]) == i["entry"] for i in items)
    everything = get(api, "/v1/access-log", "auditor").json()["items"]
    assert [i["leaf_index"] for i in everything] == list(range(len(everything)))


def test_access_checkpoints_and_proofs(api: Api) -> None:
    case_id = stored_case(api)
    assert get(api, f"/v1/cases/{case_id}", "investigator").status_code == 200
    first = api.ledger.access_log.checkpoint()
    assert first is not None
    served = get(api, "/v1/access-log/checkpoint", "auditor")
    assert served.status_code == 200
    recorded(api, served, action="access_log.checkpoint", outcome="allowed")
    vkey = verifier_key(api.ledger)
    body = note.verify_checkpoint(served.content, vkey, origin=access_origin(api.ledger.origin)).checkpoint
    assert body.size >= first.size
    size = body.size
    leaf = api.ledger.access_log.entries(limit=1)[0].entry
    proof = get(api, "/v1/access-log/proof/inclusion", "auditor", index="0", size=str(size))
    index, path = parse_inclusion_proof(proof.content, tree_size=size)
    merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, path, body.root)
    recorded(api, proof, action="access_log.proof", outcome="allowed")
    newer = api.ledger.access_log.checkpoint()
    assert newer is not None and newer.size > size
    consistency = get(api, "/v1/access-log/proof/consistency", "auditor", first=str(size), second=str(newer.size))
    merkle.verify_consistency(size, newer.size, parse_consistency_proof(consistency.content), body.root, newer.root)
    at = get(api, f"/v1/access-log/checkpoints/{newer.size}", "auditor")
    assert at.content == newer.note
    problem(get(api, "/v1/access-log/checkpoint", "supervisor"), 403, "ROLE_NOT_ALLOWED")
    problem(get(api, "/v1/access-log/proof/inclusion", "auditor", index="0", size=str(10**9)), 404, "UNKNOWN_TREE_SIZE")
    case_log = get(api, "/v1/log/checkpoint", None)
    with pytest.raises(Exception, match="origin"):  # the case log's checkpoint is not an access checkpoint
        note.verify_checkpoint(case_log.content, vkey, origin=access_origin(api.ledger.origin))


def test_a_bundle_carries_its_case_access_entries_with_proofs(api: Api, tmp_path: Path) -> None:
    from ledger.verify import verify_bundle

    case_id, other = stored_case(api), stored_case(api)
    assert get(api, f"/v1/evidence/{FOOTAGE_SHA}", "investigator", case_id=case_id).status_code == 200
    assert get(api, f"/v1/cases/{other}", "investigator").status_code == 200
    problem(get(api, f"/v1/cases/{case_id}", "prosecutor"), 404, "CASE_NOT_FOUND")
    response = get(api, f"/v1/cases/{case_id}/bundle", "auditor")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = zf.namelist()
        stored = {n: json.loads(zf.read(n)) for n in names if n.startswith("access/entries/")}
    assert manifest["format"] == "evidence-ledger-bundle/3"
    actions = [(e["action"], e["outcome"]) for e in sorted(stored.values(), key=lambda e: e["index"])]
    # the download, the refused prosecutor, and this very export (recorded, then checkpointed)
    assert actions == [("evidence.download", "allowed"), ("case.read", "denied"), ("case.bundle", "allowed")]
    assert all(e["case_id"] == case_id for e in stored.values())
    assert manifest["access_entries"] == 3 and "access/checkpoint.txt" in names
    path = tmp_path / "case.zip"
    path.write_bytes(response.content)
    result = verify_bundle(path)
    assert result.findings == [] and [a["index"] for a in result.access] == sorted(e["index"] for e in stored.values())
    assert {s.number: s.status for s in result.steps}[13] == "passed"
    assert base64.b64decode(result.access_checkpoint["root_base64"]) == bytes.fromhex(result.access_checkpoint["root"])


def test_records_queued_on_a_writer_that_never_started_are_refused_not_left_waiting(ledger: Ledger) -> None:
    from api.access import AccessWriter
    from ledger.log.access import AccessLogUnavailable
    from ledger.log.access_entry import AccessRecord

    never_started = AccessWriter(ledger.access_log)
    queued = never_started.submit(AccessRecord(action="cases.list", actor="Auditor E. Park", role="auditor"))
    never_started.stop()
    with pytest.raises(AccessLogUnavailable):
        queued.result(timeout=5)
    with pytest.raises(AccessLogUnavailable):
        never_started.submit(AccessRecord(action="cases.list", actor="Auditor E. Park", role="auditor"))
    assert ledger.access_log.size() == 0
