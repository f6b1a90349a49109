"""GET /v1/log/checkpoints/{size}/timestamps and bundle exports with a TSA configured; both backends."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.log import timestamp
from ledger.log.timestamping import configure_tsa, stamp_checkpoint
from ledger.store import Ledger
from ledger.verify import VerifyOptions, verify_bundle
from tests.support.api import Api, running_api
from tests.support.audit import Raw
from tests.support.cases import case_opened, new_case_id
from tests.support.tsa import TestTSA


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TestTSA]:
    running = TestTSA(tmp_path / "tsa").start()
    yield running
    running.stop()


@pytest.fixture
def api(ledger: Ledger, tsa: TestTSA, tmp_path: Path) -> Iterator[Api]:
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "b-tsa")
    second = TestTSA(tmp_path / "second", "Second TSA").start()
    configure_tsa(ledger.data_dir, second.url, second.ca_pem.read_bytes(), "a-tsa")
    with running_api(ledger, wait_timeout=30) as running:
        yield running
    second.stop()


def test_the_tokens_of_a_checkpoint_are_served_in_pages(api: Api, tsa: TestTSA) -> None:
    api.ok("investigator", new_case_id(), "CaseOpened", case_opened(), wait=True)
    ledger = api.ledger
    checkpoint = ledger.latest_checkpoint()
    assert checkpoint is not None and stamp_checkpoint(ledger, checkpoint) == 2
    url = f"/v1/log/checkpoints/{checkpoint.size}/timestamps"
    whole = api.client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("application/json")
    items = whole.json()["items"]
    assert [i["tsa"] for i in items] == ["a-tsa", "b-tsa"] and whole.json()["next"] is None
    body = timestamp.stamped_message(checkpoint.note)
    for item in items:
        assert timestamp.parse_token(base64.b64decode(item["token"]))  # the TSA's reply, byte for byte
        assert timestamp.gen_time_of(base64.b64decode(item["token"])) is not None
    first = api.client.get(url, params={"limit": 1}).json()
    assert first == {"items": items[:1], "next": "a-tsa"}
    assert api.client.get(url, params={"limit": 1, "after": "a-tsa"}).json() == {"items": items[1:], "next": None}
    # a row the service did not verify (a genuine token planted over another checkpoint) is never served
    api.ok("investigator", new_case_id(), "CaseOpened", case_opened(), wait=True)
    newer = ledger.latest_checkpoint()
    assert newer is not None and newer.size > checkpoint.size
    Raw(ledger).run("INSERT INTO log_timestamps (size, tsa, token, received_at) VALUES (?, ?, ?, ?)",
                    (newer.size, "b-tsa", base64.b64decode(items[1]["token"]), "2026-02-05T17:00:00.000000Z"))
    assert api.client.get(f"/v1/log/checkpoints/{newer.size}/timestamps").json() == {"items": [], "next": None}
    b_tsa = timestamp.load_trust(tsa.ca_pem.read_bytes(), "b-tsa")  # "b-tsa" is the `tsa` fixture
    assert timestamp.verify_token(base64.b64decode(items[1]["token"]), body, [b_tsa]).gen_time is not None


def test_an_unsigned_size_is_404_and_bad_arguments_400(api: Api) -> None:
    api.ok("investigator", new_case_id(), "CaseOpened", case_opened(), wait=True)
    missing = api.client.get("/v1/log/checkpoints/99999/timestamps")
    assert missing.status_code == 404 and missing.json()["code"] == "NO_CHECKPOINT"
    size = api.ledger.log_size()
    for params in ({"limit": "0"}, {"limit": "1001"}, {"after": ""}):
        bad = api.client.get(f"/v1/log/checkpoints/{size}/timestamps", params=params)
        assert bad.status_code == 400, params


def test_an_exported_bundle_carries_its_checkpoint_s_tokens(api: Api, tsa: TestTSA, tmp_path: Path) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    response = api.client.get(f"/v1/cases/{case_id}/bundle", headers=api.auth("auditor"))
    assert response.status_code == 200, response.text
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert {"timestamps/0.tsr", "timestamps/1.tsr"} <= set(names)
    bundle = tmp_path / "case.zip"
    bundle.write_bytes(response.content)
    trust = timestamp.load_trust(tsa.ca_pem.read_bytes(), "ca.pem")
    v = verify_bundle(bundle, VerifyOptions(tsa_certs=(trust,), workers=1))
    assert v.findings == [] and v.checkpoint["timestamps"]["gen_time"] is not None


def test_an_export_while_the_tsa_is_down_carries_no_token_and_still_verifies(
    ledger: Ledger, tsa: TestTSA, tmp_path: Path
) -> None:
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
    tsa.down = True
    with running_api(ledger, wait_timeout=30) as api:
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened())
        response = api.client.get(f"/v1/cases/{case_id}/bundle", headers=api.auth("auditor"))
    assert response.status_code == 200, response.text
    assert not any(n.startswith("timestamps/") for n in zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    bundle = tmp_path / "case.zip"
    bundle.write_bytes(response.content)
    assert verify_bundle(bundle, VerifyOptions(workers=1)).findings == []
    trust = timestamp.load_trust(tsa.ca_pem.read_bytes(), "ca.pem")
    pinned = verify_bundle(bundle, VerifyOptions(tsa_certs=(trust,), workers=1))
    assert [f.code for f in pinned.findings] == ["TIMESTAMP_MISSING"]
