"""Evidence files over HTTP: streaming upload, recorded download, bundles; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ledger.store import Ledger
from tests.support.api import Api, assert_same_404, problem, running_api
from tests.support.cases import (
    FOOTAGE_BYTES,
    FOOTAGE_SHA,
    case_opened,
    footage_captured,
    new_case_id,
    referral_made,
)

MIB = 1024 * 1024
PURPOSE = {"purpose": "prosecution review"}


@pytest.fixture
def api(ledger: Ledger, tmp_path: Path) -> Iterator[Api]:
    with running_api(ledger, tmp_dir=tmp_path / "bundles") as running:
        (tmp_path / "bundles").mkdir()
        yield running


def drive(
    api: Api,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes] | None = None,
    *,
    query: bytes = b"",
    disconnect_after: int | None = None,
    on_send: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[int, int, bytes]:
    """Call the ASGI app directly (raw path, chunked body); (status, chunks pulled, response body)."""
    chunks = chunks or []
    pulled = 0
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode("latin-1", "replace"), "root_path": "", "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if disconnect_after is not None and pulled >= disconnect_after:
            pulled += 1
            return {"type": "http.disconnect"}
        if pulled < max(len(chunks), 1):
            pulled += 1
            body = chunks[pulled - 1] if chunks else b""
            return {"type": "http.request", "body": body, "more_body": pulled < len(chunks)}
        await asyncio.sleep(3600)  # the whole request was sent: wait, like a live connection
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if on_send is not None:
            on_send(message)
        sent.append(message)

    asyncio.run(api.app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, pulled, body


def stored(api: Api) -> list[str]:
    root = api.ledger.data_dir / "footage"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def leftovers(api: Api) -> list[Path]:
    tmp = api.ledger.data_dir / "footage" / ".tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def upload(api: Api, data: bytes, who: str = "investigator", **headers: str) -> Any:
    return api.client.post("/v1/evidence", content=data, headers={**api.auth(who), **headers})


# -- upload ------------------------------------------------------------------------------------


def test_upload_is_content_addressed_201_then_200(api: Api) -> None:
    first = upload(api, FOOTAGE_BYTES, **{"X-Expected-SHA256": FOOTAGE_SHA})
    assert first.status_code == 201, first.text
    assert first.json() == {"sha256": FOOTAGE_SHA, "size_bytes": len(FOOTAGE_BYTES)}
    again = upload(api, FOOTAGE_BYTES, who="supervisor")
    assert again.status_code == 200 and again.json() == first.json()
    assert stored(api) == [FOOTAGE_SHA] and leftovers(api) == []
    path = api.ledger.data_dir / "footage" / FOOTAGE_SHA[:2] / FOOTAGE_SHA[2:4] / FOOTAGE_SHA
    assert path.read_bytes() == FOOTAGE_BYTES


def test_upload_is_not_bound_by_the_json_body_limit(api: Api) -> None:
    data = bytes(range(256)) * (3 * MIB // 256)  # 3 MiB > the 1 MiB JSON limit
    status, _, body = drive(api, "POST", "/v1/evidence", api.auth("investigator"),
                            [data[i:i + 65536] for i in range(0, len(data), 65536)])
    assert status == 201, body
    assert json.loads(body) == {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


def test_a_digest_mismatch_is_422_and_leaves_nothing(api: Api) -> None:
    response = upload(api, FOOTAGE_BYTES, **{"X-Expected-SHA256": "0" * 64})
    problem(response, 422, "DIGEST_MISMATCH")
    assert stored(api) == [] and leftovers(api) == []


@pytest.mark.parametrize("bad", ["../" + "a" * 61, FOOTAGE_SHA.upper(), FOOTAGE_SHA[:-1], "g" * 64, ""])
def test_a_malformed_expected_digest_is_400_before_reading(api: Api, bad: str) -> None:
    headers = {**api.auth("investigator"), "X-Expected-SHA256": bad}
    status, pulled, body = drive(api, "POST", "/v1/evidence", headers, [b"x" * 1000] * 3)
    assert (status, pulled) == (400, 0), body
    assert json.loads(body)["code"] == "BAD_EVIDENCE_ID"


def test_only_investigators_and_supervisors_upload(api: Api) -> None:
    for who in ("auditor", "prosecutor", "admin"):
        problem(upload(api, b"x", who=who), 403, "ROLE_NOT_ALLOWED")
    problem(api.client.post("/v1/evidence", content=b"x"), 401, "UNAUTHENTICATED")
    assert stored(api) == []


def test_the_evidence_cap_is_enforced_from_content_length_and_while_reading(ledger: Ledger) -> None:
    with running_api(ledger, max_evidence_bytes=3000) as api:
        headers = api.auth("investigator")
        status, pulled, body = drive(api, "POST", "/v1/evidence", {**headers, "content-length": "3001"},
                                     [b"x" * 1000] * 4)
        assert (status, pulled) == (413, 0) and json.loads(body)["code"] == "EVIDENCE_TOO_LARGE"
        status, pulled, body = drive(api, "POST", "/v1/evidence", headers, [b"x" * 1000] * 50)
        assert status == 413 and pulled == 4, (status, pulled)
        assert json.loads(body)["code"] == "EVIDENCE_TOO_LARGE"
        assert stored(api) == [] and leftovers(api) == []
        exact = upload(api, b"y" * 3000)
        assert exact.status_code == 201 and exact.json()["size_bytes"] == 3000


def test_an_interrupted_upload_leaves_nothing(api: Api) -> None:
    status, pulled, _ = drive(api, "POST", "/v1/evidence", api.auth("investigator"),
                              [b"z" * 100_000] * 10, disconnect_after=3)
    assert status == 400 and pulled == 4
    assert stored(api) == [] and leftovers(api) == []


# -- download ----------------------------------------------------------------------------------


def _case_with_stored_footage(api: Api, *, referred: bool = False) -> str:
    assert upload(api, FOOTAGE_BYTES).status_code in (200, 201)
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    if referred:
        api.ok("investigator", case_id, "ReferralMade", referral_made())
    return case_id


def _download(api: Api, case_id: str, who: str, sha: str = FOOTAGE_SHA, **params: str) -> Any:
    return api.client.get(f"/v1/evidence/{sha}", params={"case_id": case_id, **PURPOSE, **params},
                          headers=api.auth(who))


def downloads(api: Api, case_id: str) -> list[dict[str, Any]]:
    """The access-log entries of the case's downloads, oldest first."""
    entries = [json.loads(e.entry) for e in api.ledger.access_log.entries(case_id=case_id)]
    return [e for e in entries if e["action"] == "evidence.download"]


def test_a_download_is_recorded_in_the_access_log_not_in_the_case(api: Api) -> None:
    case_id = _case_with_stored_footage(api)
    response = _download(api, case_id, "auditor")
    assert response.status_code == 200 and response.content == FOOTAGE_BYTES
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(FOOTAGE_BYTES))
    assert api.ledger.case_head(case_id)[0] == 2  # no EvidenceAccessed: the case's next position is untouched
    (entry,) = downloads(api, case_id)
    assert {k: entry[k] for k in ("actor", "role", "item", "outcome", "code")} == {
        "actor": "Auditor E. Park", "role": "auditor", "item": FOOTAGE_SHA, "outcome": "allowed", "code": None,
    }
    assert "purpose" not in entry and "prosecution review" not in json.dumps(entry)  # never free text
    assert entry["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-access-entry-index"] == str(entry["index"])


def test_the_access_is_committed_before_the_first_byte(api: Api) -> None:
    case_id = _case_with_stored_footage(api)
    seen: list[int] = []

    def on_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen.append(len(downloads(api, case_id)))

    query = f"case_id={case_id}&purpose=review".encode()
    status, _, body = drive(api, "GET", f"/v1/evidence/{FOOTAGE_SHA}", api.auth("investigator"),
                            query=query, on_send=on_send)
    assert status == 200 and body == FOOTAGE_BYTES and seen == [1]


@pytest.mark.parametrize(
    "raw",
    [
        "../../etc/passwd",
        "../" * 20 + "etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2E%2E/" + "a" * 58,
        ".." + "a" * 62,
        "a" * 63 + "\x00",
        "a" * 63 + "%00",
        "\uff0e\uff0e\uff0f" + "a" * 61,
        FOOTAGE_SHA.upper(),
        FOOTAGE_SHA + "/",
        FOOTAGE_SHA[:-1],
        "",
    ],
)
def test_a_malformed_evidence_id_is_400_and_records_nothing(api: Api, raw: str) -> None:
    case_id = _case_with_stored_footage(api)
    query = f"case_id={case_id}&purpose=x".encode()
    status, _, body = drive(api, "GET", f"/v1/evidence/{raw}", api.auth("supervisor"), query=query)
    assert status == 400, (raw, status, body)
    assert json.loads(body)["code"] == "BAD_EVIDENCE_ID"
    assert downloads(api, case_id) == []


def test_malformed_ids_through_a_real_client_are_refused(api: Api) -> None:
    case_id = _case_with_stored_footage(api)
    for raw in ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", "a" * 63 + "%00", "..%252f..%252fetc"):
        response = api.client.get(f"/v1/evidence/{raw}", params={"case_id": case_id, **PURPOSE},
                                  headers=api.auth("supervisor"))
        assert response.status_code in (400, 404), (raw, response.status_code)
        assert response.json()["code"] in ("BAD_EVIDENCE_ID", "ROUTE_NOT_FOUND")
    assert downloads(api, case_id) == []


def test_prosecutors_download_only_from_cases_referred_to_them(api: Api) -> None:
    hidden = _case_with_stored_footage(api)
    referred = _case_with_stored_footage(api, referred=True)
    missing = new_case_id()
    absent = problem(_download(api, missing, "prosecutor"), 404, "CASE_NOT_FOUND")
    invisible = problem(_download(api, hidden, "prosecutor"), 404, "CASE_NOT_FOUND")
    assert_same_404(absent, missing, invisible, hidden)
    (denied,) = downloads(api, hidden)
    assert (denied["outcome"], denied["code"], denied["actor"]) == ("denied", "CASE_NOT_FOUND", "ADA C. Okafor")
    response = _download(api, referred, "prosecutor")
    assert response.status_code == 200 and response.content == FOOTAGE_BYTES
    problem(_download(api, referred, "admin"), 403, "ROLE_NOT_ALLOWED")


def test_unknown_or_unstored_files_are_404_and_recorded_as_denied(api: Api) -> None:
    case_id = _case_with_stored_footage(api)
    problem(_download(api, case_id, "investigator", sha="0" * 64), 404, "EVIDENCE_NOT_FOUND")
    other = new_case_id()
    api.ok("investigator", other, "CaseOpened", case_opened())
    unstored = hashlib.sha256(b"never uploaded").hexdigest()
    api.ok("investigator", other, "FootageCaptured", footage_captured(sha=unstored))
    problem(_download(api, other, "investigator", sha=unstored), 404, "EVIDENCE_NOT_FOUND")
    for case, sha in ((case_id, "0" * 64), (other, unstored)):
        (entry,) = downloads(api, case)
        assert (entry["outcome"], entry["code"], entry["item"]) == ("denied", "EVIDENCE_NOT_FOUND", sha)
    without_purpose = api.client.get(f"/v1/evidence/{FOOTAGE_SHA}", params={"case_id": case_id},
                                     headers=api.auth("investigator"))
    assert without_purpose.status_code == 200  # a purpose is no longer needed: it was never to be recorded


def test_downloads_and_group_commits_run_together_without_deadlock(api: Api) -> None:
    case_id = _case_with_stored_footage(api)
    token = api.auth("investigator")
    opened = [(c, api.envelope("investigator", c, "CaseOpened", case_opened()))
              for c in (new_case_id() for _ in range(24))]

    def append(item: tuple[str, bytes]) -> int:
        return api.client.post(f"/v1/cases/{item[0]}/events", content=item[1], headers=token).status_code

    def download(_: int) -> int:
        response = _download(api, case_id, "supervisor")
        assert response.content == FOOTAGE_BYTES
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        appends = pool.map(append, opened, timeout=120)
        fetched = pool.map(download, range(12), timeout=120)
        assert list(appends) == [201] * 24 and list(fetched) == [200] * 12
    assert len(downloads(api, case_id)) == 12


# -- bundles -----------------------------------------------------------------------------------


def _bundle(api: Api, case_id: str, who: str, **params: Any) -> Any:
    return api.client.get(f"/v1/cases/{case_id}/bundle", params=params, headers=api.auth(who))


def test_a_bundle_is_a_zip_with_its_sha256_and_leaves_no_temporary_file(api: Api, tmp_path: Path) -> None:
    case_id = _case_with_stored_footage(api)
    response = _bundle(api, case_id, "auditor")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["x-bundle-sha256"] == hashlib.sha256(response.content).hexdigest()
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "manifest.json" in names and not any(n.startswith("media/") for n in names)
    assert list((tmp_path / "bundles").iterdir()) == []
    assert api.ledger.case_view(case_id)["accesses"] == 0

    from ledger.verify.bundle import verify_bundle

    bundle = tmp_path / "case.zip"
    bundle.write_bytes(response.content)
    assert verify_bundle(bundle).findings == []


def test_bundle_roles_and_the_prosecutor_404(api: Api) -> None:
    hidden = _case_with_stored_footage(api)
    referred = _case_with_stored_footage(api, referred=True)
    problem(_bundle(api, hidden, "investigator"), 403, "ROLE_NOT_ALLOWED")
    problem(_bundle(api, hidden, "admin"), 403, "ROLE_NOT_ALLOWED")
    missing = new_case_id()
    absent = problem(_bundle(api, missing, "prosecutor"), 404, "CASE_NOT_FOUND")
    invisible = problem(_bundle(api, hidden, "prosecutor"), 404, "CASE_NOT_FOUND")
    assert_same_404(absent, missing, invisible, hidden)
    assert _bundle(api, referred, "prosecutor").status_code == 200
    assert _bundle(api, hidden, "supervisor").status_code == 200


def test_a_bundle_with_media_records_each_file(api: Api, tmp_path: Path) -> None:
    case_id = _case_with_stored_footage(api)
    response = _bundle(api, case_id, "supervisor", with_media="true")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert zf.read(f"media/{FOOTAGE_SHA}") == FOOTAGE_BYTES
    (entry,) = downloads(api, case_id)
    assert (entry["actor"], entry["item"], entry["outcome"]) == ("Sgt. B. Chen", FOOTAGE_SHA, "allowed")
    assert api.ledger.case_head(case_id)[0] == 2
    assert list((tmp_path / "bundles").iterdir()) == []
