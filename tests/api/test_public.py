"""The public endpoints over HTTP, on both backends: released footage only, and monthly statistics that
a single capture or hold cannot be read from. The key check: placing a hold on an unreleased item
changes no byte of any public response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import (
    FOOTAGE_SHA,
    case_opened,
    footage_captured,
    hold_placed,
    new_case_id,
)
from tests.support.ledgers import FakeClock

PUBLIC = ("/v1/public/releases", "/v1/public/statistics")


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def advance(api: Api, days: int) -> None:
    """Move the ledger's clock; tokens are issued afresh (they last a day)."""
    clock = api.ledger.clock
    assert isinstance(clock, FakeClock)
    clock.advance(days=days)
    api.tokens.clear()


def snapshot(api: Api) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    """Status, headers (but the per-request id) and body bytes of every public endpoint."""
    out = []
    for path in PUBLIC:
        response: httpx.Response = api.client.get(path)
        assert response.status_code == 200, response.text
        headers = sorted((k, v) for k, v in response.headers.items() if k.lower() != "x-request-id")
        out.append((response.status_code, headers, response.content))
    return out


def sha(n: int) -> str:
    return f"{n:064x}"


def capture(api: Api, case_id: str, footage_id: str, n: int) -> None:
    api.ok("investigator", case_id, "FootageCaptured", footage_captured(footage_id, sha=sha(n)))


def release(api: Api, case_id: str, footage_id: str, n: int) -> dict[str, Any]:
    body = {
        "footage_id": footage_id,
        "sha256": sha(n),
        "basis": "executive_order",
        "channel": "city website",
        "url": f"https://www.cambridgema.gov/police/releases/{n}",
    }
    api.ok("supervisor", case_id, "FootageReleased", body)
    return body


def test_only_released_footage_is_public_and_a_hold_changes_no_byte(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened("CPD-2026-0107"))
    capture(api, case_id, "ftg-captured", 1)  # captured, never decided
    capture(api, case_id, "ftg-held", 2)
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-1", ["ftg-held"]))
    capture(api, case_id, "ftg-lifted", 3)
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-2", ["ftg-lifted"]))
    api.ok("supervisor", case_id, "InvestigationHoldLifted", {"hold_id": "hold-2", "reason": "DA cleared"})
    capture(api, case_id, "ftg-released", 4)
    released = release(api, case_id, "ftg-released", 4)

    listed = api.client.get("/v1/public/releases").json()["items"]
    view = api.client.get(f"/v1/cases/{case_id}", headers=api.auth("supervisor")).json()
    assert listed == [
        {
            "sha256": sha(4),
            "released_at": view["releases"][0]["released_at"],
            "basis": "executive_order",
            "channel": "city website",
            "url": released["url"],
        }
    ]
    body = b"".join(content for _, _, content in snapshot(api))
    for secret in ("ftg-", "CPD-2026-0107", case_id, "BWC-0042", "2026-02-05T16:58", sha(1), sha(2), sha(3)):
        assert secret.encode() not in body, secret

    # the key check: a hold on an unreleased item, a new capture, a lift change nothing public
    before = snapshot(api)
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-3", ["ftg-captured"]))
    assert snapshot(api) == before
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-4", "case"))
    other = new_case_id()
    api.ok("investigator", other, "CaseOpened", case_opened("CPD-2026-0108"))
    capture(api, other, "ftg-other", 5)
    api.ok("investigator", other, "InvestigationHoldPlaced", hold_placed("hold-5", "case"))
    assert snapshot(api) == before
    # a release stays public when a hold is placed afterwards (a release is never undone)
    assert api.client.get("/v1/public/releases").json() == {"items": listed, "next": None}


def test_statistics_show_closed_months_only_in_ranges_and_never_move(api: Api) -> None:
    # the clock starts at 2026-02-05: the ledger's genesis month is 2026-02
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    for n in range(1, 8):
        capture(api, case_id, f"ftg-{n}", n)
    release(api, case_id, "ftg-1", 1)
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-1", ["ftg-2"]))
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-2", ["ftg-3"]))
    api.ok("supervisor", case_id, "InvestigationHoldLifted", {"hold_id": "hold-2", "reason": "DA cleared"})
    # February 2026: 1 released, 1 withheld, 5 awaiting (ftg-3..7)

    stats = api.client.get("/v1/public/statistics").json()
    assert stats == {"bucket": 5, "lag_months": 1, "months": []}  # the current month is never shown
    advance(api, 30)  # March: February ended, but its cutoff (April 1) has not come
    assert api.client.get("/v1/public/statistics").json()["months"] == []
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-3", ["ftg-4"]))  # before cutoff
    advance(api, 30)  # April 6
    stats = api.client.get("/v1/public/statistics").json()
    assert stats["months"] == [
        {
            "month": "2026-02",
            "as_of": "2026-04-01T00:00:00Z",
            "released": {"at_least": 0, "at_most": 4},
            "withheld_under_investigation": {"at_least": 0, "at_most": 4},
            "awaiting_decision": {"at_least": 0, "at_most": 4},  # 4 awaiting: suppressed
        }
    ]
    # after the cutoff, nothing changes a shown month
    before = snapshot(api)
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed("hold-4", "case"))
    api.ok("supervisor", case_id, "InvestigationHoldLifted", {"hold_id": "hold-1", "reason": "DA cleared"})
    capture(api, case_id, "ftg-8", 8)
    assert snapshot(api)[1] == before[1]


def test_statistics_count_five_as_a_range_from_five(ledger: Ledger) -> None:
    with running_api(ledger) as api:
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened())
        for n in range(1, 6):
            capture(api, case_id, f"ftg-{n}", n)
        advance(api, 60)
        months = api.client.get("/v1/public/statistics").json()["months"]
        assert months[0]["awaiting_decision"] == {"at_least": 5, "at_most": 9}
        # the same history under another bucket and lag
        wider = ledger.__class__(
            ledger.settings.model_copy(update={"public_statistics_bucket": 10, "public_statistics_lag_months": 0}),
            clock=ledger.clock,
        )
        try:
            stats = wider.public_statistics()
        finally:
            wider.close()
        assert [m["month"] for m in stats["months"]] == ["2026-02", "2026-03"]
        assert stats["months"][0]["awaiting_decision"] == {"at_least": 0, "at_most": 9}


def test_a_tampered_public_row_is_refused_not_served(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    advance(api, 60)
    assert api.client.get("/v1/public/statistics").status_code == 200
    entry = json.dumps([{"captured_at": "2026-02-05T17:00:00Z", "released_at": "2026-02-06T00:00:00Z", "held": []}])
    with api.ledger.db.write() as tx:  # a database administrator marks the footage released
        tx.execute("UPDATE public_releases SET entry = ? WHERE case_id = ?", (entry, case_id))
    body = problem(api.client.get("/v1/public/statistics"), 503, "STATE_TAMPERED")
    assert body["refs"] == {"stream": "public_releases"}
    with api.ledger.db.write() as tx:  # or passes the row off as a release
        tx.execute("UPDATE public_releases SET status = 'released', entry = '[]' WHERE case_id = ?", (case_id,))
    for path in PUBLIC:
        problem(api.client.get(path), 503, "STATE_TAMPERED")
    with api.ledger.db.write() as tx:  # or deletes the case's row: counted in the log head
        tx.execute("DELETE FROM public_releases WHERE case_id = ?", (case_id,))
    for path in PUBLIC:
        problem(api.client.get(path), 503, "STATE_TAMPERED")
    assert FOOTAGE_SHA not in api.client.get("/v1/public/statistics").text
