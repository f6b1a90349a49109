"""The production profile: a checkpoint is published only once two witnesses in other trust domains
cosigned it (docs/witness.md) — init, add-witness, serve, the served and exported checkpoint, and
the witness that goes down; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.app import create_app
from api.settings import ApiSettings
from domain.errors import VerificationError
from ledger.cli.app import commands
from ledger.log import note
from ledger.log.witnessing import checkpoint_with_witnesses, configure_witness
from ledger.settings import CONFIG_FILE, ConfigurationError
from ledger.store import Ledger
from ledger.verify import bundle_format as bf
from ledger.verify.trust import read_pin_file
from tests.support.api import problem, running_api
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.ledgers import ORIGIN
from tests.support.production import log_vkey, production_ledger, witnesses

DA, AG = "middlesexda.gov/witness", "mass.gov/ago-witness"


@pytest.fixture
def ledger(tmp_path: Path, database_url: str | None) -> Iterator[Ledger]:
    opened = production_ledger(tmp_path, database_url)
    yield opened
    opened.close()


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    import api.cli  # noqa: F401 - registers serve

    return CliRunner().invoke(commands(), list(args), env=env or {}, terminal_width=400)


def test_production_init_records_the_profile_and_refuses_demo_mode(tmp_path: Path, ledger: Ledger) -> None:
    saved = json.loads((ledger.data_dir / CONFIG_FILE).read_text())
    assert saved["profile"] == "production" and saved["min_witnesses"] == 2
    assert ledger.production and ledger.config.min_witnesses == 2
    demo = tmp_path / "demo"
    refused = cli("init", "--origin", ORIGIN, "--profile", "production", "--data-dir", str(demo),
                  "--keystore-dir", str(tmp_path / "ks2"))
    assert refused.exit_code == 2, refused.output
    assert refused.output.startswith("error: CONFIGURATION: --profile production never keeps the trust-root")
    assert "--admin-public-key" in refused.output and not demo.exists()
    standard = cli("init", "--origin", ORIGIN, "--data-dir", str(tmp_path / "std"), "--json")
    assert standard.exit_code == 0 and json.loads(standard.stdout)["profile"] == "standard"
    assert json.loads((tmp_path / "std" / CONFIG_FILE).read_text())["profile"] == "standard"


def test_add_witness_refuses_a_witness_in_the_log_own_trust_domain(ledger: Ledger) -> None:
    key = note.make_verifier_key("cambridgema.gov/witness", _public(), note.SIG_TYPE_COSIGNATURE_V1)
    refused = cli("log", "add-witness", "--url", "http://127.0.0.1:9", "--vkey", str(key),
                  "--data-dir", str(ledger.data_dir))
    assert refused.exit_code == 2
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SAME_TRUST_DOMAIN: witness cambridgema.gov/witness")
    assert not (ledger.data_dir / "witnesses.json").exists()
    other = note.make_verifier_key(DA, _public(), note.SIG_TYPE_COSIGNATURE_V1)
    assert cli("log", "add-witness", "--url", "http://127.0.0.1:9", "--vkey", str(other),
               "--data-dir", str(ledger.data_dir)).exit_code == 0


def test_serve_refuses_to_start_with_fewer_than_two_witnesses_in_other_domains(ledger: Ledger) -> None:
    configure_witness(ledger.data_dir, "http://127.0.0.1:9", str(_witness_key(DA)))
    with (ledger.data_dir / "witnesses.json").open("r+") as handle:  # one of the City's own, added by hand
        own = {"url": "http://127.0.0.1:9", "vkey": str(_witness_key("cambridgema.gov/w"))}
        entries = [*json.load(handle), own]
        handle.seek(0)
        json.dump(entries, handle)
    env = {"EVIDENCE_LEDGER_DATABASE_URL": ledger.settings.database_url or "",
           "EVIDENCE_LEDGER_KEYSTORE_DIR": str(ledger.settings.keystore_dir)}
    refused = cli("serve", "--data-dir", str(ledger.data_dir), "--port", "9", env=env)
    assert refused.exit_code == 2, refused.output
    assert refused.output.startswith("error: CONFIGURATION: this production ledger has 1 witness(es) in other")
    assert "evidence-ledger log add-witness" in refused.output
    app = create_app(ledger=ledger, api_settings=ApiSettings())
    with pytest.raises(ConfigurationError):
        app.state.runtime.start()


def test_only_a_checkpoint_with_two_cosignatures_is_served_waited_for_and_exported(
    ledger: Ledger, tmp_path: Path
) -> None:
    with witnesses(ledger, tmp_path, DA, AG) as (da, ag):
        for witness in (da, ag):
            configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
        keys, vkey = [da.vkey, ag.vkey], log_vkey(ledger)
        with running_api(ledger) as api:
            case_id = new_case_id()
            receipt = api.ok("investigator", case_id, "CaseOpened", case_opened(), wait=True)
            first = note.verify_checkpoint(receipt["checkpoint"].encode(), vkey, keys, 2).checkpoint
            assert first.size > receipt["leaf_index"]
            served = api.client.get("/v1/log/checkpoint")
            assert note.verify_checkpoint(served.content, vkey, keys, 2).checkpoint.size == first.size
            ready = api.client.get("/readyz").json()
            assert (ready["profile"], ready["min_witnesses"], ready["witnessed_size"]) == ("production", 2, first.size)
            assert f"evidence_ledger_witnessed_size {float(first.size)}" in api.client.get("/metrics").text
            covered = api.client.get(f"/v1/cases/{case_id}/bundle", headers=api.auth("supervisor"))
            assert covered.status_code == 200, covered.text

            ag.stop()  # one witness down: entries are still appended, never published without it
            later = new_case_id()
            raw = api.envelope("investigator", later, "CaseOpened", case_opened())
            waited = api.post_raw(later, raw, "investigator", wait=True)
            body = problem(waited, 503, "NOT_WITNESSED")
            assert waited.headers["retry-after"] == "5" and body["refs"]["leaf_index"] >= first.size
            again = api.post_raw(later, raw, "investigator")
            assert again.status_code == 200 and again.json()["duplicate"] is True  # committed all the same
            signed = ledger.latest_checkpoint()
            assert signed is not None and signed.size > first.size and len(signed.cosignatures) == 1
            with ledger.db.write() as tx:  # an insider adds the missing witness's line: it does not verify
                tx.execute("INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)",
                           (signed.size, AG, signed.cosignatures[0].replace(DA, AG), "2026-02-05T17:00:00Z"))
            still = api.client.get("/v1/log/checkpoint")
            assert note.verify_checkpoint(still.content, vkey, keys, 2).checkpoint.size == first.size
            problem(api.client.get(f"/v1/log/checkpoints/{signed.size}"), 404, "NOT_WITNESSED")
            assert api.client.get(f"/v1/log/checkpoints/{first.size}").content == still.content
            assert api.client.get("/readyz").json()["witnessed_size"] == first.size
            problem(api.client.get(f"/v1/cases/{later}/bundle", headers=api.auth("supervisor")), 503,
                    "NOT_WITNESSED")
            earlier = api.client.get(f"/v1/cases/{case_id}/bundle", headers=api.auth("supervisor"))
            assert earlier.status_code == 200, earlier.text
    for bundle in (covered, earlier):
        with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
            exported = zf.read(bf.CHECKPOINT)
        assert note.verify_checkpoint(exported, vkey, keys, 2).checkpoint.size == first.size
    with pytest.raises(VerificationError):  # never the newer one with a single cosignature
        note.verify_checkpoint(signed.with_cosignatures(), vkey, keys, 2)
    env = {"EVIDENCE_LEDGER_DATABASE_URL": ledger.settings.database_url or ""}
    audited = cli("audit", "--data-dir", str(ledger.data_dir), "--json", "--workers", "1", env=env)
    report = json.loads(audited.stdout)
    assert audited.exit_code == 1 and report["witnessed_size"] == first.size
    (unpublished,) = [f for f in report["findings"] if f["code"] == "WITNESS_POLICY"]
    assert unpublished["leaf_index"] == first.size  # the ledger's own policy: never published in time


def test_forward_dated_entries_never_published_are_witness_policy_at_once(ledger: Ledger, tmp_path: Path) -> None:
    """A tail rewritten with integration times after the audit's now (+ the allowed skew) is not too
    recent to have been published: the production audit reports it as never published in time."""
    with witnesses(ledger, tmp_path, DA, AG) as (da, ag):
        for witness in (da, ag):
            configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
        published = checkpoint_with_witnesses(ledger, timeout=10)
        assert published is not None and len(published.cosignatures) == 2
    ledger.clock.now = datetime.now(UTC) + timedelta(days=1)  # type: ignore[attr-defined]
    Actors.register(ledger).ok("investigator", new_case_id(), "CaseOpened", case_opened())
    env = {"EVIDENCE_LEDGER_DATABASE_URL": ledger.settings.database_url or ""}
    audited = cli("audit", "--data-dir", str(ledger.data_dir), "--json", "--workers", "1", env=env)
    report = json.loads(audited.stdout)
    assert audited.exit_code == 1 and report["witnessed_size"] == published.size
    found = sorted((f["code"], f["leaf_index"]) for f in report["findings"])
    assert found == [("UNCHECKPOINTED_ENTRIES", published.size), ("WITNESS_POLICY", published.size)]


def test_before_any_checkpoint_is_witnessed_the_latest_is_503_not_witnessed(ledger: Ledger) -> None:
    for name in (DA, AG):  # nothing listens there
        configure_witness(ledger.data_dir, "http://127.0.0.1:9", str(_witness_key(name)))
    with running_api(ledger, wait_timeout=1.0) as api:
        api.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        answer = api.client.get("/v1/log/checkpoint")
        problem(answer, 503, "NOT_WITNESSED")
        assert answer.headers["retry-after"] == "5"
        assert api.client.get("/readyz").json()["witnessed_size"] == 0


def test_log_key_prints_the_trust_pin_command_that_pins_the_production_policy(
    ledger: Ledger, tmp_path: Path
) -> None:
    for name in (DA, AG):
        configure_witness(ledger.data_dir, "http://127.0.0.1:9", str(_witness_key(name)))
    shown = cli("log", "key", "--data-dir", str(ledger.data_dir))
    assert shown.exit_code == 0 and shown.stdout == f"{log_vkey(ledger)}\n"
    command = shown.stderr.strip().splitlines()[-1]
    words = shlex.split(command)
    assert words[:3] == ["evidence-ledger", "trust", "pin"] and words[-2:] == ["--profile", "production"]
    pins = tmp_path / "pins.toml"
    pinned = cli(*words[1:], "--trust", str(pins))
    assert pinned.exit_code == 0, pinned.output
    (pin,) = read_pin_file(pins).logs
    assert (pin.origin, pin.vkey, pin.trust_root) == (ORIGIN, log_vkey(ledger), ledger.config.admin_key_id)
    assert (pin.profile, pin.min_witnesses, {w.name for w in pin.witnesses}) == ("production", 2, {DA, AG})


def _public() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().public_key()


def _witness_key(name: str) -> note.VerifierKey:
    return note.make_verifier_key(name, _public(), note.SIG_TYPE_COSIGNATURE_V1)
