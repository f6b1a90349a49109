"""A production pin (`trust pin --profile production`): the verifier's default policy for a production
ledger requires two witness cosignatures, in `verify`, `log verify-checkpoint` and `audit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from ledger.cli.app import commands
from ledger.evidence.bundle import export_bundle
from ledger.log import note
from ledger.log.witnessing import checkpoint_with_witnesses, configure_witness
from ledger.store import Ledger
from ledger.verify import VerifyOptions, exit_code, verify_bundle
from ledger.verify.trust import LogPin, PinFile, read_pin_file, render_pin_file
from tests.support.cases import Actors, case_opened, new_case_id, report_received
from tests.support.production import log_vkey, witnesses

DA, AG = "middlesexda.gov/witness", "mass.gov/ago-witness"


def backend() -> str:
    return "sqlite"


def _key(name: str) -> note.VerifierKey:
    return note.make_verifier_key(name, Ed25519PrivateKey.generate().public_key(), note.SIG_TYPE_COSIGNATURE_V1)


def _log_key() -> note.VerifierKey:
    return note.make_verifier_key("cambridgema.gov/evidence-ledger", Ed25519PrivateKey.generate().public_key())


def cli(*args: str) -> Any:
    return CliRunner().invoke(commands(), list(args), terminal_width=400)


def test_a_production_pin_needs_two_witnesses_and_a_minimum_of_two(tmp_path: Path) -> None:
    origin, vkey = "cambridgema.gov/evidence-ledger", _log_key()
    with pytest.raises(ValueError, match="at least 2 witness keys"):
        LogPin(origin, vkey, witnesses=(_key(DA),), profile="production")
    with pytest.raises(ValueError, match="at least 2 cosignatures, not 1"):
        LogPin(origin, vkey, witnesses=(_key(DA), _key(AG)), min_witnesses=1, profile="production")
    with pytest.raises(ValueError, match=r"other trust domains.*witness\.cambridgema\.gov/w is the log's own"):
        LogPin(origin, vkey, witnesses=(_key(DA), _key("witness.cambridgema.gov/w")), profile="production")
    pin = LogPin(origin, vkey, witnesses=(_key(DA), _key(AG)), profile="production")
    assert pin.min_witnesses == 2 and pin.required_witnesses(0) == 2 and pin.required_witnesses(3) == 3
    text = render_pin_file(PinFile(tmp_path / "p.toml", (pin,)))
    assert b'profile = "production"' in text
    (tmp_path / "p.toml").write_bytes(text)
    assert read_pin_file(tmp_path / "p.toml").logs == (pin,)

    pins = str(tmp_path / "cli.toml")
    one = cli("trust", "pin", "--origin", origin, "--vkey", str(vkey), "--witness", str(_key(DA)),
              "--profile", "production", "--trust", pins)
    assert one.exit_code == 2 and one.output.count("\n") == 1
    assert one.output.startswith("error: BAD_ARGUMENT: a production pin needs at least 2 witness keys")
    low = cli("trust", "pin", "--origin", origin, "--vkey", str(vkey), "--witness", str(_key(DA)),
              "--witness", str(_key(AG)), "--min-witnesses", "1", "--profile", "production", "--trust", pins)
    assert low.exit_code == 2 and "at least 2 cosignatures, not 1" in low.output
    assert not Path(pins).exists()
    ok = cli("trust", "pin", "--origin", origin, "--vkey", str(vkey), "--witness", str(_key(DA)),
             "--witness", str(_key(AG)), "--profile", "production", "--trust", pins, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["min_witnesses"] == 2


def test_a_bundle_with_one_cosignature_fails_witness_policy_under_a_production_pin(
    ledger: Ledger, tmp_path: Path
) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    with witnesses(ledger, tmp_path, DA, AG) as (da, ag):
        for witness in (da, ag):
            configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
        both = checkpoint_with_witnesses(ledger, timeout=5)
        assert both is not None and len(both.cosignatures) == 2
        two = export_bundle(ledger, case_id, tmp_path / "two.zip")
        (tmp_path / "two.txt").write_bytes(both.with_cosignatures())
        ag.stop()
        actors.ok("investigator", case_id, "ReportReceived", report_received(None))
        single = checkpoint_with_witnesses(ledger, timeout=5)
        assert single is not None and len(single.cosignatures) == 1
        one = export_bundle(ledger, case_id, tmp_path / "one.zip")  # a standard ledger exports it
        (tmp_path / "one.txt").write_bytes(single.with_cosignatures())
    pin = LogPin(ledger.origin, log_vkey(ledger), ledger.config.admin_key_id, (da.vkey, ag.vkey), profile="production")
    pins = PinFile(tmp_path / "pins.toml", (pin,))
    (tmp_path / "pins.toml").write_bytes(render_pin_file(pins))

    passed = verify_bundle(two.path, VerifyOptions(pins=pins, workers=1))
    assert [f.code for f in passed.findings] == [] and exit_code(passed, False) == 0
    for options in (VerifyOptions(pins=pins, workers=1), VerifyOptions(pins=pins, min_witnesses=1, workers=1)):
        failed = verify_bundle(one.path, options)  # --min-witnesses 1 cannot lower a production pin
        assert [f.code for f in failed.findings] == ["WITNESS_POLICY"] and exit_code(failed, False) == 1
    standard = PinFile(pins.path, (LogPin(pin.origin, pin.vkey, pin.trust_root, pin.witnesses, 1),))
    assert verify_bundle(one.path, VerifyOptions(pins=standard, workers=1)).findings == []  # a standard pin may say 1

    trust = ["--trust", str(tmp_path / "pins.toml")]
    assert cli("log", "verify-checkpoint", str(tmp_path / "two.txt"), *trust).exit_code == 0
    refused = cli("log", "verify-checkpoint", str(tmp_path / "one.txt"), *trust, "--min-witnesses", "1")
    assert refused.exit_code == 1 and "WITNESS_POLICY" in refused.output

    audited = cli("audit", "--data-dir", str(ledger.data_dir), *trust, "--json", "--workers", "1")
    report = json.loads(audited.stdout)
    assert audited.exit_code == 1 and [f["code"] for f in report["findings"]] == ["WITNESS_POLICY"]
    assert report["witnessed_size"] == both.size
    assert report["findings"][0]["leaf_index"] == both.size
    clean = cli("audit", "--data-dir", str(ledger.data_dir), "--json", "--workers", "1")  # no pin: standard
    assert clean.exit_code == 0, clean.stdout


def test_own_witness_keys_never_lower_a_production_pin_s_floor(ledger: Ledger, tmp_path: Path) -> None:
    """`--witness` replaces the pinned keys, not the pin's minimum: under a production pin,
    `--witness K --min-witnesses 0` still needs two cosignatures (and fewer keys are an error), in
    `verify`, `log verify-checkpoint` and `audit`."""
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    with witnesses(ledger, tmp_path, DA, AG) as (da, ag):
        for witness in (da, ag):
            configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
        ag.stop()
        single = checkpoint_with_witnesses(ledger, timeout=5)
        assert single is not None and len(single.cosignatures) == 1
        one = export_bundle(ledger, case_id, tmp_path / "one.zip")
        (tmp_path / "one.txt").write_bytes(single.with_cosignatures())
    pin = LogPin(ledger.origin, log_vkey(ledger), ledger.config.admin_key_id, (da.vkey, ag.vkey), profile="production")
    pins = PinFile(tmp_path / "pins.toml", (pin,))
    (tmp_path / "pins.toml").write_bytes(render_pin_file(pins))
    both = ["--witness", str(da.vkey), "--witness", str(ag.vkey), "--min-witnesses", "0"]
    only_da = ["--witness", str(da.vkey), "--min-witnesses", "0"]
    trust = ["--trust", str(tmp_path / "pins.toml")]

    failed = verify_bundle(one.path, VerifyOptions(pins=pins, witnesses=(da.vkey, ag.vkey), min_witnesses=0, workers=1))
    assert [f.code for f in failed.findings] == ["WITNESS_POLICY"] and failed.checkpoint["required"] == 2
    verified = cli("verify", str(one.path), *trust, *both, "--json")
    assert verified.exit_code == 1 and "WITNESS_POLICY" in verified.stdout
    too_few = cli("verify", str(one.path), *trust, *only_da)
    assert too_few.exit_code == 2 and too_few.output.count("\n") == 1
    assert too_few.output.startswith(f"error: BAD_ARGUMENT: the production pin for {ledger.origin} requires 2")

    refused = cli("log", "verify-checkpoint", str(tmp_path / "one.txt"), *trust, *both)
    assert refused.exit_code == 1 and "WITNESS_POLICY" in refused.output
    few = cli("log", "verify-checkpoint", str(tmp_path / "one.txt"), *trust, *only_da)
    assert few.exit_code == 2 and "give at least 2 --witness keys" in few.output

    audited = cli("audit", "--data-dir", str(ledger.data_dir), *trust, *both, "--json", "--workers", "1")
    report = json.loads(audited.stdout)
    assert audited.exit_code == 1 and [f["code"] for f in report["findings"]] == ["WITNESS_POLICY"]
    assert report["witnessed_size"] is None  # no checkpoint has the two cosignatures
    short = cli("audit", "--data-dir", str(ledger.data_dir), *trust, *only_da, "--workers", "1")
    assert short.exit_code == 2 and "give at least 2 --witness keys" in short.output
