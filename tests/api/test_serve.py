"""A real `evidence-ledger serve` subprocess on a free loopback port, driven with httpx.

Also exercises the real console entry point for `tokens issue` and `append --server`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from domain.errors import AuthorizationError
from ledger.client import append_remote
from ledger.envelope.keys import write_private_key
from ledger.log import note
from ledger.store import Ledger
from ops.procs import CLI, Server, serving
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


def _env(ledger: Ledger) -> dict[str, str]:
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir)}
    if ledger.settings.database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = ledger.settings.database_url
    return env


def _cli(ledger: Ledger, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=_env(ledger), capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def server(ledger: Ledger, tmp_path: Path) -> Iterator[Server]:
    with serving(_env(ledger), tmp_path / "server.log") as running:
        yield running


def _issue(ledger: Ledger, actor: str, role: str) -> str:
    issued = _cli(ledger, "tokens", "issue", "--actor", actor, "--role", role, "--expires-in", "1h")
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip().splitlines()[-1]


def _stream(total: int, chunk: int = MIB) -> Callable[[], Iterator[bytes]]:
    def generate() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            yield b"x" * chunk
            sent += chunk

    return generate


def test_serve_end_to_end(ledger: Ledger, server: Server, tmp_path: Path) -> None:
    actors = Actors.register(ledger)
    token = _issue(ledger, "Det. A. Rivera", "investigator")
    case_id = new_case_id()
    receipt = append_remote(server.url, token, case_id, "CaseOpened", case_opened(), actors.keys["investigator"])
    assert (receipt["case_id"], receipt["seq"]) == (case_id, 1)
    with pytest.raises(AuthorizationError) as refused:
        append_remote(server.url, token, case_id, "FootageCaptured", footage_captured(), actors.keys["supervisor"])
    assert refused.value.code == "SIGNER_NOT_CALLER"
    assert "'Sgt. B. Chen'" in refused.value.message and "'Det. A. Rivera'" in refused.value.message  # both actors

    key_file = tmp_path / "investigator.pem"
    write_private_key(actors.keys["investigator"], key_file)
    appended = _cli(ledger, "append", case_id, "FootageCaptured", "--key", str(key_file),
                    "--body", json.dumps(footage_captured()), "--server", server.url, "--token", token, "--json")
    assert appended.returncode == 0, appended.stderr
    assert json.loads(appended.stdout)["seq"] == 2

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        view = client.get(f"/v1/cases/{case_id}")
        assert view.status_code == 200 and view.json()["version"] == 2 and view.headers["x-request-id"]
        vkey = note.parse_verifier_key(client.get("/v1/log/key").text.strip())
        assert note.verify_checkpoint(client.get("/v1/log/checkpoint").content, vkey).checkpoint.origin == ledger.origin
        assert client.get("/docs").status_code == 200
        assert client.get("/v1/cases").status_code == 200
        assert httpx.get(f"{server.url}/v1/cases").status_code == 401
        assert "evidence_ledger_http_requests_total" in client.get("/metrics").text

    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests and all({"request_id", "route", "status", "latency_ms"} <= r.keys() for r in requests)
    assert not any(token in line or "Vehicle damaged" in line for line in server.log_lines())


@pytest.mark.parametrize("backend", ["sqlite"])  # refused while reading, before any storage is touched
def test_serve_refuses_a_50_mb_body_without_buffering_it(ledger: Ledger, server: Server) -> None:
    Actors.register(ledger)
    token = _issue(ledger, "Det. A. Rivera", "investigator")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    before = server.rss_kib()
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        chunked = client.post("/v1/sealed", content=_stream(50 * MIB)())
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["code"] == "PAYLOAD_TOO_LARGE"
        declared = client.post(
            "/v1/sealed", content=_stream(50 * MIB)(), headers={"Content-Length": str(50 * MIB)}
        )
        assert declared.status_code == 413
    assert server.rss_kib() - before < 30 * 1024, "the server must not hold the body in memory"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_serve_stops_cleanly_on_sigterm(ledger: Ledger, server: Server) -> None:
    actors = Actors.register(ledger)
    token = _issue(ledger, "Det. A. Rivera", "investigator")
    case_id = new_case_id()
    receipt = append_remote(server.url, token, case_id, "CaseOpened", case_opened(), actors.keys["investigator"])
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM when done
    assert any("Application shutdown complete" in line for line in server.log_lines())
    assert any('"service stopped"' in line for line in server.log_lines())
    latest = ledger.latest_checkpoint()
    assert latest is not None and latest.size > receipt["leaf_index"], "a final checkpoint covers every append"


@pytest.mark.parametrize("backend", ["sqlite"])  # evidence files go to the footage store, never the database
def test_serve_streams_a_large_upload_without_holding_it(ledger: Ledger, server: Server) -> None:
    import hashlib

    Actors.register(ledger)
    token = _issue(ledger, "Det. A. Rivera", "investigator")
    total = 120 * MIB
    chunk = bytes(range(256)) * (MIB // 256)
    digest = hashlib.sha256()
    for _ in range(total // MIB):
        digest.update(chunk)
    before = server.rss_kib()

    def body() -> Iterator[bytes]:
        for _ in range(total // MIB):
            yield chunk

    headers = {"Authorization": f"Bearer {token}", "X-Expected-SHA256": digest.hexdigest()}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        response = client.post("/v1/evidence", content=body())
    assert response.status_code == 201, response.text
    assert response.json() == {"sha256": digest.hexdigest(), "size_bytes": total}
    assert server.rss_kib() - before < 40 * 1024, "the upload must stream to disk, not into memory"
    stored = ledger.data_dir / "footage" / digest.hexdigest()[:2] / digest.hexdigest()[2:4] / digest.hexdigest()
    assert stored.stat().st_size == total
