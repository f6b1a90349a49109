"""Two ledgers with one history up to a point and the same keys after it: a server that forked its log
(an insider copied the data dir and appended other events to the copy), or restored an old backup."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from ledger.store import Ledger
from tests.support.cases import Actors, case_opened, new_case_id


@dataclass
class Fork:
    """``a`` and ``b`` share every leaf up to ``shared`` (a copy of a's data dir taken then), and the keys."""

    a: Ledger
    b: Ledger
    actors_a: Actors
    actors_b: Actors
    shared: int

    def grow(self, side: str, cases: int) -> int:
        """Open ``cases`` new cases on one side, checkpoint it; its new log size."""
        ledger, actors = (self.a, self.actors_a) if side == "a" else (self.b, self.actors_b)
        for _ in range(cases):
            actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        ledger.checkpoint()
        return ledger.log_size()


def fork_ledgers(make_ledger: Callable[..., Ledger], tmp_path: Path) -> Fork:
    """Register the actors on a sqlite ledger, checkpoint, copy its data dir (the ledger closed): b."""
    a = make_ledger()
    if a.target.sqlite_path is None:
        pytest.skip("a fork by copying the data dir needs the sqlite backend")
    actors = Actors.register(a)
    a.checkpoint()
    shared = a.log_size()
    a.close()
    shutil.copytree(a.data_dir, tmp_path / "data-b")
    a, b = make_ledger(), make_ledger(data_dir=tmp_path / "data-b")
    return Fork(a, b, Actors(a, actors.keys), Actors(b, actors.keys), shared)


@contextmanager
def served(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API on ``ledger``, and every HTTP client the command line opens pointed at it (any URL)."""
    app = create_app(ledger=ledger, api_settings=ApiSettings())
    with TestClient(app, raise_server_exceptions=False) as client, monkeypatch.context() as patch:
        patch.setattr(
            "ledger.transport.httpx.Client",
            lambda base_url="", **_: TestClient(app, base_url=base_url, raise_server_exceptions=False),
        )
        yield client


def export(ledger: Ledger, case_id: str, out: Path) -> Path:
    """Checkpoint and export the case's bundle to ``out``."""
    from ledger.evidence.bundle import export_bundle

    ledger.checkpoint()
    export_bundle(ledger, case_id, out)
    return out


def pins(ledger: Ledger) -> list[str]:
    """``--vkey`` and ``--trust-root`` options pinning the ledger's log key and trust root."""
    from ledger.log import note

    vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    return ["--vkey", str(vkey), "--trust-root", ledger.config.admin_key_id]


@contextmanager
def proofs_from(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`verify --server URL` (any URL) asks the API on ``ledger``: its standard-library client is pointed
    at a TestClient."""
    app = create_app(ledger=ledger, api_settings=ApiSettings())
    with TestClient(app, raise_server_exceptions=False) as client:

        def get(self: object, path: str, params: dict[str, int] | None = None) -> bytes:
            answer = client.get(path, params=params)
            assert answer.status_code == 200, answer.text
            return answer.content

        with monkeypatch.context() as patch:
            patch.setattr("ledger.verify.log_server.LogServer.get", get)
            yield
