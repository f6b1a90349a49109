"""The log side of trusted time: tsa.json, the checkpointer's time-stamp requests, storage (both backends)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.log import timestamp
from ledger.log.checkpointer import Checkpointer
from ledger.log.timestamping import (
    TSA_FILE,
    configure_tsa,
    load_tsas,
    stamp_checkpoint,
    stored_tokens,
    tokens_for,
)
from ledger.log.witnessing import checkpoint_with_witnesses, configure_witness
from ledger.settings import ConfigurationError
from ledger.store import Ledger
from tests.support.audit import Raw
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.production import production_ledger, witnesses
from tests.support.tsa import TestTSA


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TestTSA]:
    running = TestTSA(tmp_path / "tsa").start()
    yield running
    running.stop()


def _grow(ledger: Ledger, actors: Actors | None = None) -> Actors:
    actors = actors or Actors.register(ledger)
    actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    return actors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_add_tsa_writes_a_strict_file(ledger: Ledger, tsa: TestTSA, tmp_path: Path) -> None:
    endpoint = configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes())
    assert endpoint.name == "127.0.0.1" and [e.name for e in load_tsas(ledger.data_dir)] == ["127.0.0.1"]
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes() + tsa.cert_pem.read_bytes(), "second")
    loaded = load_tsas(ledger.data_dir)
    assert [e.name for e in loaded] == ["127.0.0.1", "second"] and loaded[1].trust.tsa_certificate is not None
    path = ledger.data_dir / TSA_FILE
    good = json.loads(path.read_text())
    (ledger.data_dir / "ca.pem").write_bytes(tsa.ca_pem.read_bytes())
    assert load_tsas(ledger.data_dir)  # as written
    for broken in (
        [{**good[0], "extra": 1}],
        [good[0], good[0]],  # one name twice
        [{**good[0], "url": "ftp://tsa.example"}],
        [{**good[0], "url": "https://user:pw@tsa.example/"}],
        [{**good[0], "name": "a b"}],
        [{**good[0], "cert": tsa.cert_pem.read_text()}],  # the TSA certificate alone: no CA to chain to
        [{**good[0], "cert": "missing.pem"}],
        {"name": "x"},
    ):
        path.write_text(json.dumps(broken))
        with pytest.raises(ConfigurationError):
            load_tsas(ledger.data_dir)
    path.write_text(json.dumps([{**good[0], "cert": "ca.pem"}]))  # a path relative to the data dir
    assert load_tsas(ledger.data_dir)[0].trust.roots
    with pytest.raises(ConfigurationError):
        configure_tsa(tmp_path / "not-a-data-dir", tsa.url, tsa.ca_pem.read_bytes())


def test_the_checkpointer_stores_verified_tokens(ledger: Ledger, tsa: TestTSA) -> None:
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
    _grow(ledger)
    checkpointer = Checkpointer(ledger, interval=0.05, tsa_interval=3600, tsa_timeout=5)
    checkpointer.start()
    try:
        checkpoint = checkpointer.wait_for(ledger.log_size(), 30)
        assert checkpoint is not None
        assert checkpointer.timestamp_for(checkpoint.size, 30)
    finally:
        checkpointer.stop()
    rows = stored_tokens(ledger, checkpoint)
    assert [row.tsa for row, _ in rows] == ["test-tsa"] and tsa.requests == 1
    body = timestamp.stamped_message(checkpoint.note)
    trust = timestamp.load_trust(tsa.ca_pem.read_bytes(), "ca")
    assert timestamp.verify_token(rows[0][0].token, body, [trust]).gen_time == rows[0][1]
    assert stamp_checkpoint(ledger, checkpoint) == 1 and tsa.requests == 1  # held: not asked again


def test_at_most_one_periodic_request_per_interval(ledger: Ledger, tsa: TestTSA) -> None:
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
    actors = _grow(ledger)
    checkpointer = Checkpointer(ledger, interval=3600, tsa_interval=3600)  # rounds driven by hand
    first = ledger.checkpoint()
    assert first is not None
    checkpointer.latest_size = first.size
    checkpointer.stamp_round()
    assert tsa.requests == 1 and len(tokens_for(ledger, first.size)) == 1
    _grow(ledger, actors)
    second = ledger.checkpoint()
    assert second is not None and second.size > first.size
    checkpointer.latest_size = second.size
    checkpointer.stamp_round()  # within the interval: the newest checkpoint waits
    assert tsa.requests == 1 and tokens_for(ledger, second.size) == []
    checkpointer.tsa_interval = 0.0
    checkpointer.stamp_round()
    assert tsa.requests == 2 and len(tokens_for(ledger, second.size)) == 1


def test_production_rounds_also_stamp_the_published_checkpoint_a_bundle_shows(
    tmp_path: Path, database_url: str | None, tsa: TestTSA
) -> None:
    """In production a bundle carries the newest *published* checkpoint, older than the newest signed
    one while a witness is down: the periodic round stamps it too, once, not only when an export asks."""
    ledger = production_ledger(tmp_path, database_url)
    try:
        configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
        actors = _grow(ledger)
        with witnesses(ledger, tmp_path, "middlesexda.gov/witness", "mass.gov/ago-witness") as (da, ag):
            for witness in (da, ag):
                configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
            published = checkpoint_with_witnesses(ledger, timeout=10)
            assert published is not None and len(published.cosignatures) == 2
            ag.stop()
            _grow(ledger, actors)
            newest = checkpoint_with_witnesses(ledger, timeout=10)
        assert newest is not None and newest.size > published.size and len(newest.cosignatures) == 1
        shown = ledger.published_checkpoint()
        assert shown is not None and shown.size == published.size
        checkpointer = Checkpointer(ledger, interval=3600, tsa_interval=0.0)  # rounds driven by hand
        checkpointer.latest_size = newest.size
        checkpointer._update_witnessed()
        assert checkpointer.witnessed_size == published.size
        checkpointer.stamp_round()
        assert len(tokens_for(ledger, newest.size)) == 1 and len(tokens_for(ledger, published.size)) == 1
        assert tsa.requests == 2
        checkpointer.stamp_round()  # both hold their token: no TSA is asked again
        assert tsa.requests == 2
    finally:
        ledger.close()


@pytest.mark.parametrize("how", ["down", "unreachable", "wrong certificate"])
def test_a_failing_tsa_never_breaks_checkpointing(
    ledger: Ledger, tsa: TestTSA, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, cert = tsa.url, tsa.ca_pem.read_bytes()
    if how == "down":
        tsa.down = True
    elif how == "unreachable":
        url = f"http://127.0.0.1:{_free_port()}/tsr"
    else:
        cert = TestTSA(tmp_path / "other", "Other TSA").ca_pem.read_bytes()
    configure_tsa(ledger.data_dir, url, cert, "test-tsa")
    _grow(ledger)
    checkpointer = Checkpointer(ledger, interval=0.05, tsa_interval=3600, tsa_timeout=2)
    checkpointer.start()
    try:
        checkpoint = checkpointer.wait_for(ledger.log_size(), 30)
        assert checkpoint is not None and checkpoint.size == ledger.log_size()  # signed regardless
        assert checkpointer.timestamp_for(checkpoint.size, 30)  # the round ended, without a token
    finally:
        checkpointer.stop()
    assert tokens_for(ledger, checkpoint.size) == []
    assert any("TSA test-tsa gave no time-stamp" in r.getMessage() for r in caplog.records)
    assert ledger.latest_checkpoint() == checkpoint


def test_a_planted_or_edited_row_is_never_served(ledger: Ledger, tsa: TestTSA) -> None:
    """An insider's row (a genuine token over another checkpoint, or one edited) is left out."""
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
    actors = _grow(ledger)
    first = ledger.checkpoint()
    assert first is not None and stamp_checkpoint(ledger, first) == 1
    _grow(ledger, actors)
    second = ledger.checkpoint()
    assert second is not None
    raw = Raw(ledger)
    token = tokens_for(ledger, first.size)[0].token
    raw.run("INSERT INTO log_timestamps (size, tsa, token, received_at) VALUES (?, ?, ?, ?)",
            (second.size, "test-tsa", token, "2026-02-05T17:00:01.000000Z"))
    assert tokens_for(ledger, second.size) and stored_tokens(ledger, second) == []
    assert [row.tsa for row, _ in stored_tokens(ledger, first)] == ["test-tsa"]
    if not raw.postgres:  # PostgreSQL's append-only triggers refuse the edit itself (tests/ledger/storage)
        raw.run("UPDATE log_timestamps SET token = ? WHERE size = ?", (token[:-1] + b"\x00", first.size))
        assert stored_tokens(ledger, first) == []


def test_the_add_tsa_command(ledger: Ledger, tsa: TestTSA, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands

    commands()
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(ledger.data_dir))
    runner = CliRunner()
    done = runner.invoke(app, ["log", "add-tsa", "--url", tsa.url, "--cert", str(tsa.ca_pem), "--name", "freetsa",
                               "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"name": "freetsa", "url": tsa.url}
    assert [e.name for e in load_tsas(ledger.data_dir)] == ["freetsa"]
    refused = runner.invoke(app, ["log", "add-tsa", "--url", tsa.url, "--cert", str(tsa.cert_pem)])
    assert refused.exit_code == 2 and "BAD_TSA_CERT" in refused.output and "no self-signed CA" in refused.output
    missing = runner.invoke(app, ["log", "add-tsa", "--url", tsa.url, "--cert", "/nonexistent.pem"])
    assert missing.exit_code == 2 and "cannot read --cert" in missing.output
    bad_url = runner.invoke(app, ["log", "add-tsa", "--url", "ftp://x", "--cert", str(tsa.ca_pem)])
    assert bad_url.exit_code == 2 and "BAD_ARGUMENT" in bad_url.output
