"""GET /verify: the in-browser verifier page, public, forbidden every connection by its policy header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.store import Ledger
from ledger.verify import web
from tests.support.api import Api, running_api


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def test_the_page_is_served_without_a_token_with_its_policy_header(api: Api) -> None:
    response = api.client.get("/verify")
    assert response.status_code == 200 and response.content == web.page_bytes()
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["connect-src"] == "'none'" and directives["default-src"] == "'none'"
    assert directives["script-src"] == web.script_hash()  # the one inline script, nothing else
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert api.client.get("/verify", params={"x": "1"}).status_code == 400  # unknown query parameters


def test_the_page_is_package_data() -> None:
    """It reaches the wheel and the editable install as package data of ledger.verify.web."""
    from importlib import resources

    assert resources.files("ledger.verify.web").joinpath("verify.html").read_bytes() == web.page_bytes()
    assert web.page_bytes().startswith(b"<!DOCTYPE html>")
