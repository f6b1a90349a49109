"""A production-profile ledger (admin key held outside the data dir) and in-process witnesses."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.witness_app import make_server
from ledger.bootstrap import GENESIS_REQUEST, genesis_from_request, init_data_dir
from ledger.envelope.keys import generate_key_pair, raw_public_key
from ledger.log import note
from ledger.settings import Settings, key_path
from ledger.store import Ledger
from ledger.witness.cosigner import Witness
from tests.support.ledgers import ORIGIN, FakeClock


def production_ledger(tmp_path: Path, database_url: str | None) -> Ledger:
    """``init --profile production`` with an admin key made outside the data dir, its genesis signed
    there and submitted. The shared test helpers (``Actors.register``) sign registrations with the
    data dir's admin key, so a copy is put there afterwards: the profile is what is under test."""
    admin_file = tmp_path / "offline" / "admin.pem"
    admin_file.parent.mkdir()
    admin = generate_key_pair(admin_file)
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, database_url=database_url, keystore_dir=tmp_path / "keystore")
    clock = FakeClock()
    init_data_dir(data_dir, ORIGIN, settings, now=clock(), admin_public=raw_public_key(admin), profile="production")
    ledger = Ledger(settings, clock=clock)
    request = json.loads((data_dir / GENESIS_REQUEST).read_text("utf-8"))
    for raw in genesis_from_request(admin, request, now=clock()):
        ledger.append_one(raw)
    shutil.copy(admin_file, key_path(data_dir, "admin"))
    return ledger


def log_vkey(ledger: Ledger) -> note.VerifierKey:
    return note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())


@dataclass
class RunningWitness:
    name: str
    url: str
    vkey: note.VerifierKey
    stop: Callable[[], None]


@contextmanager
def witnesses(ledger: Ledger, tmp_path: Path, *names: str) -> Iterator[list[RunningWitness]]:
    """One in-process witness server per name, following ``ledger``; all stopped at the end."""
    running: list[RunningWitness] = []
    servers: list[Any] = []
    try:
        for name in names:
            folder = tmp_path / ("witness-" + name.replace("/", "_"))
            witness = Witness.create(folder, name, str(log_vkey(ledger)), origin=ledger.origin)
            server = make_server(witness, "127.0.0.1", 0)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            servers.append(server)
            stopped = threading.Event()

            def stop(server: Any = server, thread: threading.Thread = thread, stopped: threading.Event = stopped) -> None:
                if not stopped.is_set():
                    stopped.set()
                    server.shutdown()
                    server.server_close()
                    thread.join(timeout=20)

            running.append(
                RunningWitness(name, f"http://127.0.0.1:{server.server_address[1]}", witness.verifier_key, stop)
            )
        yield running
    finally:
        for witness in running:
            witness.stop()
