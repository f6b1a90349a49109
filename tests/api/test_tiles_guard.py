"""The published tiles count for the rollback guard: a database restored to an older state than the
tiles directory's checkpoint refuses writes even when the guard file itself is older; a checkpoint
there that this log did not sign is ignored; a tile conflict shows in /readyz and /metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from ledger.log import note, tiles
from ledger.log.rollback import latest_path
from ledger.log.tile_writer import TileWriter
from ledger.store import Ledger
from tests.support.api import Api, problem
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id
from tests.support.rollback import Snapshots


@contextmanager
def serving(ledger: Ledger, actors: Actors) -> Iterator[Api]:
    app = create_app(ledger=ledger, api_settings=ApiSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app=app, client=client, ledger=ledger, actors=actors)


def test_a_database_older_than_the_published_tiles_refuses_writes(
    make_ledger: Callable[..., Ledger], backend: str, tmp_path: Path
) -> None:
    """The guard file says 3, the restored database holds 3, the tiles publish 5: writes are refused."""
    snaps = Snapshots(make_ledger, backend, tmp_path)
    try:
        ledger = make_ledger()
        actors = Actors.register(ledger)
        case_id = new_case_id()
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
        ledger.checkpoint()
        guard_then = latest_path(ledger.data_dir).read_bytes()
        ledger = actors.ledger = snaps.take(ledger)
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        published = ledger.checkpoint()
        assert published is not None
        TileWriter(ledger.settings.tiles_path).publish(ledger)
        tiles_checkpoint = (ledger.settings.tiles_path / tiles.CHECKPOINT).read_bytes()
        ledger = actors.ledger = snaps.restore(ledger)
        latest_path(ledger.data_dir).write_bytes(guard_then)  # the guard file is as old as the database
        assert ledger.rollback_status().state == "ok"  # the guard file alone does not see it

        with serving(ledger, actors) as api:
            assert api.runtime.write_block is not None
            body = problem(api.post("investigator", case_id, "FootageCaptured", footage_captured()), 503,
                           "ROLLBACK_DETECTED")
            assert "2 entries are missing" in body["detail"] and body["refs"]["missing"] == 2
            ready = problem(api.client.get("/readyz"), 503, "ROLLBACK_DETECTED")
            assert f"checkpoint {published.size} was already published" in ready["detail"]
            assert f"evidence_ledger_tiles_size {float(published.size)}" in api.client.get("/metrics").text
        assert latest_path(ledger.data_dir).read_bytes() == tiles_checkpoint  # recorded in the guard
        assert (ledger.settings.tiles_path / tiles.CHECKPOINT).read_bytes() == tiles_checkpoint  # never moved back
    finally:
        snaps.drop()


def _forged(ledger: Ledger, size: int) -> bytes:
    body = note.Checkpoint(origin=ledger.origin, size=size, root=b"\x01" * 32).body()
    return note.sign_note(body, ledger.config.log_key_name, Ed25519PrivateKey.generate())


def test_a_tiles_checkpoint_signed_by_another_key_is_ignored(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    ledger.checkpoint()
    guard_before = latest_path(ledger.data_dir).read_bytes()
    directory = ledger.settings.tiles_path
    directory.mkdir(parents=True, exist_ok=True)
    (directory / tiles.CHECKPOINT).write_bytes(_forged(ledger, ledger.log_size() + 100))

    writer = TileWriter(directory)
    assert writer.guard_published(ledger) == "untrusted"
    assert writer.published_size == 0 and writer.error is not None and "not trusted" in writer.error
    assert latest_path(ledger.data_dir).read_bytes() == guard_before

    with serving(ledger, actors) as api:
        assert api.runtime.write_block is None
        assert api.post("investigator", new_case_id(), "CaseOpened", case_opened()).status_code == 201
        assert api.client.get("/readyz").status_code == 200
    assert latest_path(ledger.data_dir).read_bytes() != _forged(ledger, ledger.log_size() + 100)
    assert ledger.rollback_status().state == "ok"


def _ready_tiles(api: Api, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        response = api.client.get("/readyz")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()["tiles"]
        if until(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def test_a_tile_conflict_shows_in_readyz_and_metrics(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    ledger.checkpoint()
    directory = ledger.settings.tiles_path
    TileWriter(directory).publish(ledger)
    tile = next(p for p in sorted((directory / "tile").rglob("*")) if p.is_file())
    tile.write_bytes(b"\xff" + tile.read_bytes()[1:])  # altered on disk

    with serving(ledger, actors) as api:
        state = _ready_tiles(api, lambda s: s["conflicts"] > 0)
        assert state["conflicts"] >= 1 and state["error"].startswith("TILE_CONFLICT: ")
        assert state["size"] == ledger.log_size()
        counted = re.search(r"^evidence_ledger_tile_conflicts (\S+)$", api.client.get("/metrics").text, re.M)
        assert counted is not None and float(counted.group(1)) >= 1
    assert tile.read_bytes()[0] == 0xFF  # never overwritten


def test_a_clean_directory_reports_its_size(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    ledger.checkpoint()
    with serving(ledger, actors) as api:
        state = _ready_tiles(api, lambda s: s["size"] > 0)
        assert state == {"size": ledger.log_size(), "error": None, "conflicts": 0}
