"""Over HTTP: a second CaseOpened with a used case number is a 409 DUPLICATE_CASE_NUMBER naming the
case that has it, and GET /v1/cases?number= finds a case by its number."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import case_opened, new_case_id


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def test_a_used_case_number_is_refused_and_found(api: Api) -> None:
    first, second = new_case_id(), new_case_id()
    api.ok("investigator", first, "CaseOpened", case_opened("CPD-2026-0777"))
    size = api.ledger.log_size()
    body = problem(api.post("investigator", second, "CaseOpened", case_opened("CPD-2026-0777")), 409,
                   "DUPLICATE_CASE_NUMBER")
    assert body["refs"]["case_id"] == first and first in body["detail"]
    assert api.ledger.log_size() == size
    api.ok("investigator", second, "CaseOpened", case_opened("CPD-2026-0778"))
    found = api.client.get("/v1/cases", params={"number": "CPD-2026-0777"}, headers=api.auth("investigator"))
    assert found.status_code == 200 and found.json() == {"items": [api.ledger.list_cases(number="CPD-2026-0777")[0]],
                                                         "next": None}
    assert [c["case_id"] for c in found.json()["items"]] == [first]
    none = api.client.get("/v1/cases", params={"number": "CPD-NONE"}, headers=api.auth("investigator"))
    assert none.json() == {"items": [], "next": None}
    bad = api.client.get("/v1/cases", params={"number": "has space"}, headers=api.auth("investigator"))
    assert bad.status_code in (400, 422)
