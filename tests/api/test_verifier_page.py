"""GET /verify: the in-browser verifier page, public, forbidden every connection by its policy header."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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


def test_the_vendored_library_is_inlined_only_with_its_pinned_hashes(tmp_path: Path) -> None:
    page = web.page_bytes()
    copy = tmp_path / "vendor"
    shutil.copytree(web.VENDOR_DIR, copy)
    assert web.with_vendored(page, copy) == page  # the pinned files: the page as shipped
    original = (copy / "index.js").read_bytes()
    (copy / "index.js").write_bytes(original.replace(b"return options.zip215 ?? true;", b"return true;"))
    with pytest.raises(ValueError, match=r"index\.js has SHA-256 [0-9a-f]{64}, not the pinned") as refused:
        web.with_vendored(page, copy)
    assert web.VENDORED["index.js"] in str(refused.value)
    (copy / "index.js").write_bytes(original)
    (copy / "LICENSE").write_bytes(b"no licence\n")
    with pytest.raises(ValueError, match=r"LICENSE has SHA-256 .* refusing to build verify\.html"):
        web.with_vendored(page, copy)
    (copy / "LICENSE").unlink()
    with pytest.raises(FileNotFoundError):
        web.with_vendored(page, copy)


def test_the_page_embeds_the_vendored_licence() -> None:
    licence = web.vendored_file("LICENSE").decode("utf-8").rstrip()
    text = web.page_bytes().decode("utf-8")
    script = text.split("<script>", 1)[1]
    assert "/*! @noble/ed25519 3.2.0: its LICENSE\n" + licence + "\n*/" in script
    assert "The MIT License (MIT)" in licence and "Paul Miller" in licence
