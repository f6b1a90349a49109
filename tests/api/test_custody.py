"""A footage item's chain of custody over HTTP (SQLite and PostgreSQL): the case view gives its length
and link, the chain is served page by page to whoever may see the case, bad parameters are
problems, and an edited link answers 503 STATE_TAMPERED."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.audit import Raw
from tests.support.cases import case_opened, footage_captured, new_case_id, referral_made

TRANSFERS = 5


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def transfer(api: Api, case_id: str, frm: str, to: str) -> None:
    api.ok("investigator", case_id, "CustodyTransferred",
           {"footage_id": "ftg-1", "from_custodian": frm, "to_custodian": to, "purpose": "review"})


@pytest.fixture
def case_id(api: Api) -> str:
    """A case whose ftg-1 went through TRANSFERS transfers: a chain of TRANSFERS + 1 links."""
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    custodians = ["CPD Evidence Unit", *(f"Unit {i}" for i in range(TRANSFERS))]
    for frm, to in pairwise(custodians):
        transfer(api, case_id, frm, to)
    return case_id


def get(api: Api, path: str, who: str = "investigator", **params: Any) -> Any:
    return api.client.get(path, params=params or None, headers=api.auth(who))


def test_the_view_links_the_chain_and_its_pages_cover_it_once_in_order(api: Api, case_id: str) -> None:
    (footage,) = get(api, f"/v1/cases/{case_id}").json()["footage"]
    href = f"/v1/cases/{case_id}/footage/ftg-1/custody"
    assert footage["custody"] == {"steps": TRANSFERS + 1, "href": href}
    assert footage["custodian"] == f"Unit {TRANSFERS - 1}"  # the current value, in the view itself
    links, after = [], 0
    while True:
        page = get(api, href, after=after, limit=2)
        assert page.status_code == 200, page.text
        body = page.json()
        links += body["items"]
        if body["next"] is None:
            break
        assert body["next"] == body["items"][-1]["step"]
        after = body["next"]
    assert [link["step"] for link in links] == list(range(1, TRANSFERS + 2))
    assert links[0] | {"at": None, "leaf_index": None} == {
        "step": 1, "from_custodian": None, "to_custodian": "CPD Evidence Unit", "purpose": "capture", "seq": 2,
        "at": None, "leaf_index": None,
    }
    assert [(link["from_custodian"], link["to_custodian"]) for link in links[1:3]] == [
        ("CPD Evidence Unit", "Unit 0"), ("Unit 0", "Unit 1")
    ]
    timeline = {line["seq"]: line["leaf_index"] for line in get(api, f"/v1/cases/{case_id}/timeline").json()["items"]}
    assert all(timeline[link["seq"]] == link["leaf_index"] for link in links)  # each link names its log entry
    whole = get(api, href).json()
    assert whole == {"items": links, "next": None}
    assert get(api, href, after=TRANSFERS + 1).json() == {"items": [], "next": None}


def test_the_view_does_not_grow_with_the_chain(api: Api, case_id: str) -> None:
    before = len(get(api, f"/v1/cases/{case_id}").content)
    for i in range(TRANSFERS, TRANSFERS + 20):
        transfer(api, case_id, f"Unit {i - 1}", f"Unit {i}")
    after = get(api, f"/v1/cases/{case_id}")
    assert after.json()["footage"][0]["custody"]["steps"] == TRANSFERS + 21
    assert len(after.content) - before <= 4  # the version, the count and the custodian's digits; no list


@pytest.mark.parametrize(
    "params",
    [{"limit": 1001}, {"limit": 0}, {"after": -1}, {"after": "x"}, {"before": 3}],
    ids=["limit above the maximum", "limit 0", "negative cursor", "cursor not a number", "unknown parameter"],
)
def test_bad_parameters_are_problems(api: Api, case_id: str, params: dict[str, Any]) -> None:
    problem(get(api, f"/v1/cases/{case_id}/footage/ftg-1/custody", **params), 400, "INVALID_REQUEST")


def test_the_largest_page_is_allowed(api: Api, case_id: str) -> None:
    page = get(api, f"/v1/cases/{case_id}/footage/ftg-1/custody", limit=1000)
    assert page.status_code == 200 and len(page.json()["items"]) == TRANSFERS + 1


def test_a_footage_id_that_is_not_an_id_is_a_problem_and_unknown_footage_is_404(api: Api, case_id: str) -> None:
    problem(get(api, f"/v1/cases/{case_id}/footage/f%20g/custody"), 400, "INVALID_REQUEST")
    body = problem(get(api, f"/v1/cases/{case_id}/footage/ftg-9/custody"), 404, "FOOTAGE_NOT_FOUND")
    assert body["refs"] == {"footage_id": "ftg-9"}
    problem(get(api, f"/v1/cases/{new_case_id()}/footage/ftg-1/custody"), 404, "CASE_NOT_FOUND")


def test_access_is_the_case_views(api: Api, case_id: str) -> None:
    """A prosecutor sees the chain of a case referred to their authority only, like the case itself."""
    path = f"/v1/cases/{case_id}/footage/ftg-1/custody"
    problem(get(api, path, "prosecutor"), 404, "CASE_NOT_FOUND")
    problem(get(api, f"/v1/cases/{case_id}", "prosecutor"), 404, "CASE_NOT_FOUND")
    api.ok("investigator", case_id, "ReferralMade", referral_made())
    assert get(api, path, "prosecutor").status_code == 200
    problem(get(api, path, "ag_prosecutor"), 404, "CASE_NOT_FOUND")  # referred to another authority
    for who in ("supervisor", "auditor"):
        assert get(api, path, who).status_code == 200
    problem(api.client.get(path), 401, "UNAUTHENTICATED")


def test_an_edited_link_answers_503_state_tampered(api: Api, case_id: str) -> None:
    Raw(api.ledger).run(
        "UPDATE case_custody SET entry = REPLACE(entry, 'Unit 0', 'Unit X') WHERE case_id = ? AND step = 2", (case_id,)
    )
    body = problem(get(api, f"/v1/cases/{case_id}/footage/ftg-1/custody"), 503, "STATE_TAMPERED")
    assert body["refs"] == {"case_id": case_id}
    assert get(api, f"/v1/cases/{case_id}/footage/ftg-1/custody", after=2).status_code == 200  # later pages check
    Raw(api.ledger).run("DELETE FROM case_custody WHERE case_id = ? AND step = 6", (case_id,))
    problem(get(api, f"/v1/cases/{case_id}/footage/ftg-1/custody", after=2), 503, "STATE_TAMPERED")


def test_a_footage_id_of_dots_is_linked_so_that_clients_keep_it(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured(".."))
    (footage,) = get(api, f"/v1/cases/{case_id}").json()["footage"]
    assert footage["custody"]["href"] == f"/v1/cases/{case_id}/footage/%2E%2E/custody"
    page = get(api, footage["custody"]["href"])
    assert page.status_code == 200, page.text
    assert [link["to_custodian"] for link in page.json()["items"]] == ["CPD Evidence Unit"]
