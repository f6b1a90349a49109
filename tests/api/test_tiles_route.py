"""GET /tiles/...: the tiled log the checkpointer writes, served with the caching c2sp.org/tlog-tiles asks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ledger.log import note, tiles
from ledger.log.proof_json import parse_consistency_proof, parse_inclusion_proof
from ledger.store import Ledger
from ops.bench.bench_log import prefill
from tests.support.api import Api, problem, running_api


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    prefill(ledger, 600)
    with running_api(ledger) as api:
        yield api


def _published(api: Api) -> note.Checkpoint:
    """Wait for the checkpointer to publish the tiles of every entry (a checkpoint per interval)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = api.client.get("/tiles/checkpoint")
        if response.status_code == 200:
            body = note.verify_checkpoint(response.content, api.ledger.rollback_guard().log_key).checkpoint
            if body.size == api.ledger.log_size():
                return body
        time.sleep(0.05)
    raise AssertionError("the tiles were not published")


def test_tiles_are_served_with_their_caching(api: Api) -> None:
    body = _published(api)
    checkpoint = api.client.get("/tiles/checkpoint")
    assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
    assert checkpoint.headers["cache-control"] == "no-cache"
    assert checkpoint.headers["access-control-allow-origin"] == "*"
    assert checkpoint.content == api.client.get("/v1/log/checkpoint").content
    full = api.client.get("/tiles/tile/0/001")
    assert full.status_code == 200 and len(full.content) == 8192
    assert full.headers["content-type"] == "application/octet-stream"
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["access-control-allow-origin"] == "*"
    width = body.size % 256
    partial = api.client.get(f"/tiles/tile/entries/002.p/{width}")
    assert partial.status_code == 200 and partial.headers["cache-control"] == "public, max-age=60"
    assert len(tiles.parse_bundle(tiles.Tile(None, 2, width), partial.content)) == width
    assert api.client.get("/tiles/tile/1/000.p/2").status_code == 200


NOT_TILES = [
    "/tiles/tile/0/1", "/tiles/tile/0/009", "/tiles/tile/0/000.p/0", "/tiles/tile/0/../../ledger.json",
    "/tiles/tile/0/%2e%2e/000", "/tiles/tile/entries/x001/000", "/tiles/ledger.json", "/tiles/tile/", "/tiles/",
    "/tiles/tile/0/000.p/7", "/tiles/tile/3/000",
]


def test_anything_else_is_404(api: Api) -> None:
    _published(api)
    for path in NOT_TILES:
        response = api.client.get(path)
        assert response.status_code == 404, path
        if path.startswith("/tiles/tile/") and ".." not in path and path != "/tiles/tile/":
            problem(response, 404, "NO_TILE")


def test_proofs_from_the_served_tiles_equal_the_api_proofs(api: Api) -> None:
    body = _published(api)

    def fetch(path: str) -> bytes:
        response = api.client.get(f"/tiles/{path}")
        assert response.status_code == 200, path
        return response.content

    tree = tiles.TiledTree(fetch, body.size)
    assert tree.root() == body.root
    for index in (0, 255, 256, 599, body.size - 1):
        response = api.client.get("/v1/log/proof/inclusion", params={"index": index, "size": body.size})
        assert parse_inclusion_proof(response.content, tree_size=body.size) == (index, tree.inclusion_proof(index))
        assert tree.entry(index) == api.client.get(f"/v1/log/entries/{index}").content
    for first in (1, 256, 257, 512, body.size):
        response = api.client.get("/v1/log/proof/consistency", params={"first": first, "second": body.size})
        assert parse_consistency_proof(response.content) == tree.consistency_proof(first)
