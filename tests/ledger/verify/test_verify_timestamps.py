"""Bundles carry RFC 3161 time-stamps over their checkpoint (format 3, ``timestamps/<n>.tsr``); the
offline verifier checks them against the TSA certificates given (--tsa-cert) or pinned (tsa_certs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.evidence.bundle import export_bundle
from ledger.log.timestamping import configure_tsa, stamp_checkpoint
from ledger.store import Ledger
from ledger.verify import LogPin, PinFile, VerifyOptions, render_pin_file, verify_bundle
from ledger.verify.bundle_format import BUNDLE_FORMAT_V2
from ledger.verify.trust import PinFileError, read_pin_file
from tests.support.bundles import Exported, Members, export_scenario, run_verify, tampered
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.tsa import TestTSA

MEMBER = "timestamps/0.tsr"


@dataclass
class Stamped:
    exported: Exported  # the bundle with its checkpoint's time-stamp
    unstamped: Path  # the same case and checkpoint, exported before any TSA answered
    tsa: TestTSA

    def pins(self) -> list[str]:
        return ["--vkey", self.exported.log_vkey, "--trust-root", self.exported.trust_root]


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TestTSA]:
    running = TestTSA(tmp_path / "tsa").start()
    yield running
    running.stop()


@pytest.fixture
def other_tsa(tmp_path: Path) -> TestTSA:
    return TestTSA(tmp_path / "other-tsa", "Other TSA")


def _stamped(ledger: Ledger, tsa: TestTSA, tmp_path: Path) -> Stamped:
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
    exported = export_scenario(ledger, tmp_path / "unstamped.zip")
    checkpoint = ledger.latest_checkpoint()
    assert checkpoint is not None and stamp_checkpoint(ledger, checkpoint) == 1
    export_bundle(ledger, exported.case_id, tmp_path / "stamped.zip")
    return Stamped(Exported(ledger, exported.actors, exported.case_id, tmp_path / "stamped.zip"),
                   exported.path, tsa)


@pytest.fixture
def stamped(ledger: Ledger, tsa: TestTSA, tmp_path: Path) -> Stamped:
    return _stamped(ledger, tsa, tmp_path)


def _report(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_verify(*args, "--json")
    assert result.stderr == "" or "LEAKED" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _codes(report: dict[str, Any]) -> set[str]:
    return {f["code"] for f in report["findings"]}


def test_a_bundle_with_a_valid_time_stamp_verifies_offline(stamped: Stamped) -> None:
    code, report = _report(str(stamped.exported.path), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert (code, report["verdict"]) == (0, "verified"), report["findings"]
    section = report["checkpoint"]["timestamps"]
    assert section["checked"] and section["source"] == "--tsa-cert"
    assert section["tokens"] == [{"path": MEMBER, "status": "verified", "tsa": "ca.pem", "gen_time": section["gen_time"]}]
    assert datetime.now(UTC) - datetime.fromisoformat(section["gen_time"]) < timedelta(hours=1)
    text = run_verify(str(stamped.exported.path), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem)).stdout
    assert f"trusted time: the checkpoint existed by {section['gen_time']} (RFC 3161, verified)" in text


def test_without_a_tsa_certificate_the_token_is_listed_unchecked(stamped: Stamped) -> None:
    code, report = _report(str(stamped.exported.path), *stamped.pins())
    assert (code, report["verdict"]) == (0, "verified")
    assert report["checkpoint"]["timestamps"]["tokens"][0]["status"] == "not checked"
    assert report["checkpoint"]["timestamps"]["gen_time"] is None
    assert any("time-stamp token(s) were not checked" in c for c in report["caveats"])


def test_a_wrong_tsa_certificate_is_timestamp_invalid(stamped: Stamped, other_tsa: TestTSA) -> None:
    code, report = _report(str(stamped.exported.path), *stamped.pins(), "--tsa-cert", str(other_tsa.ca_pem))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_INVALID"})
    assert report["findings"][0]["evidence"]["path"] == MEMBER and report["findings"][0]["step"] == 8


def test_an_altered_token_is_timestamp_invalid(stamped: Stamped, tmp_path: Path) -> None:
    def alter(m: Members) -> None:
        token = bytearray(m[MEMBER])
        token[-30] ^= 0x01  # inside the signature
        m[MEMBER] = bytes(token)

    bundle = tampered(stamped.exported.path, tmp_path / "altered.zip", alter)
    code, report = _report(str(bundle), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_INVALID"})


def test_a_token_over_another_checkpoint_is_timestamp_invalid(stamped: Stamped, tmp_path: Path) -> None:
    ledger = stamped.exported.ledger
    stamped.exported.actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    newer = ledger.checkpoint()
    assert newer is not None and stamp_checkpoint(ledger, newer) == 1
    with ledger.db.read() as tx:
        row = tx.one("SELECT token FROM log_timestamps WHERE size = ?", (newer.size,))
    assert row is not None
    bundle = tampered(stamped.exported.path, tmp_path / "other.zip", lambda m: m.update({MEMBER: bytes(row[0])}))
    code, report = _report(str(bundle), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_INVALID"})
    assert "other bytes than this checkpoint" in report["findings"][0]["message"]


def test_no_token_with_a_tsa_certificate_is_timestamp_missing(stamped: Stamped) -> None:
    code, report = _report(str(stamped.unstamped), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_MISSING"})
    code, report = _report(str(stamped.unstamped), *stamped.pins())  # no policy: no finding
    assert (code, report["verdict"]) == (0, "verified")


def test_a_token_of_an_unpinned_tsa_beside_a_valid_one_is_no_failure(
    stamped: Stamped, other_tsa: TestTSA, tmp_path: Path
) -> None:
    def add(m: Members) -> None:
        from ledger.log import timestamp

        body = timestamp.stamped_message(m["checkpoint.txt"])
        m["timestamps/1.tsr"] = other_tsa.reply(timestamp.build_request(body).der)

    bundle = tampered(stamped.exported.path, tmp_path / "two.zip", add)
    code, report = _report(str(bundle), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert (code, report["verdict"]) == (0, "verified"), report["findings"]
    statuses = [t["status"] for t in report["checkpoint"]["timestamps"]["tokens"]]
    assert statuses == ["verified", "not signed by a pinned TSA"]
    code, report = _report(str(bundle), *stamped.pins(), "--tsa-cert", str(other_tsa.ca_pem),
                           "--tsa-cert", str(stamped.tsa.ca_pem))
    assert code == 0 and [t["status"] for t in report["checkpoint"]["timestamps"]["tokens"]] == ["verified"] * 2


def test_pinned_tsa_certificates_apply(stamped: Stamped, other_tsa: TestTSA, tmp_path: Path) -> None:
    folder = tmp_path / "pins"
    folder.mkdir()
    (folder / "tsa-ca.pem").write_bytes(stamped.tsa.ca_pem.read_bytes())
    (folder / "other-ca.pem").write_bytes(other_tsa.ca_pem.read_bytes())
    e = stamped.exported
    pin_file = folder / "trust.toml"

    def pin(certs: tuple[str, ...]) -> None:
        from ledger.log import note

        logpin = LogPin(e.ledger.origin, note.parse_verifier_key(e.log_vkey), e.trust_root, tsa_certs=certs)
        pin_file.write_bytes(render_pin_file(PinFile(pin_file, (logpin,))))

    pin(("tsa-ca.pem",))
    code, report = _report(str(e.path), "--trust", str(pin_file))
    assert (code, report["checkpoint"]["timestamps"]["source"]) == (0, "pin file"), report["findings"]
    code, report = _report(str(stamped.unstamped), "--trust", str(pin_file))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_MISSING"})
    pin(("other-ca.pem",))
    code, report = _report(str(e.path), "--trust", str(pin_file))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_INVALID"})
    code, report = _report(str(e.path), "--trust", str(pin_file), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert code == 0  # --tsa-cert overrides the pinned certificates
    (folder / "other-ca.pem").unlink()  # a pinned certificate gone: the pin file is unusable, never ignored
    with pytest.raises(PinFileError, match=r"other-ca\.pem: cannot read it"):
        read_pin_file(pin_file)
    result = run_verify(str(e.path), "--trust", str(pin_file))
    assert result.returncode == 2 and "BAD_PIN_FILE" in result.stderr


def test_trust_pin_tsa_cert_writes_a_relative_path(stamped: Stamped, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands

    commands()

    def run_cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    folder = tmp_path / "pins"
    folder.mkdir()
    (folder / "tsa-ca.pem").write_bytes(stamped.tsa.ca_pem.read_bytes())
    e = stamped.exported
    pin_file = folder / "trust.toml"
    result = run_cli("trust", "pin", "--origin", e.ledger.origin, "--vkey", e.log_vkey, "--trust-root", e.trust_root,
                     "--tsa-cert", str(folder / "tsa-ca.pem"), "--trust", str(pin_file))
    assert result.exit_code == 0, result.output
    assert read_pin_file(pin_file).logs[0].tsa_certs == ("tsa-ca.pem",)
    bad = run_cli("trust", "pin", "--origin", e.ledger.origin, "--vkey", e.log_vkey,
                  "--tsa-cert", str(stamped.tsa.cert_pem), "--trust", str(pin_file))
    assert bad.exit_code == 2 and "no self-signed CA" in bad.output


def test_an_unusable_tsa_certificate_is_exit_2(stamped: Stamped, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    result = run_verify(str(stamped.exported.path), "--tsa-cert", str(junk))
    assert result.returncode == 2 and "BAD_TSA_CERT" in result.stderr


def test_version_2_bundles_verify_as_before(stamped: Stamped, tmp_path: Path) -> None:
    def as_v2(m: Members) -> None:
        manifest = json.loads(m["manifest.json"])
        manifest["format"] = BUNDLE_FORMAT_V2
        m["manifest.json"] = json.dumps(manifest).encode()

    bundle = tampered(stamped.unstamped, tmp_path / "v2.zip", as_v2)
    code, report = _report(str(bundle), *stamped.pins())
    assert (code, report["manifest"]["format"]) == (0, BUNDLE_FORMAT_V2), report["findings"]
    code, report = _report(str(bundle), *stamped.pins(), "--tsa-cert", str(stamped.tsa.ca_pem))
    assert (code, _codes(report)) == (1, {"TIMESTAMP_MISSING"})  # a verifier that demands trusted time


def test_a_leaf_integrated_after_the_tsa_s_time_is_timestamp_invalid(
    ledger: Ledger, tsa: TestTSA, tmp_path: Path
) -> None:
    """The ledger's clock runs a day ahead (or its leaves were forward-dated): the TSA saw the tree
    before its last leaf claims to have been integrated."""
    ledger.clock.now = datetime.now(UTC) + timedelta(days=1)  # type: ignore[attr-defined]
    s = _stamped(ledger, tsa, tmp_path)
    trust = (s.tsa.ca_pem,)
    from ledger.log import timestamp

    options = VerifyOptions(tsa_certs=tuple(timestamp.load_trust(p.read_bytes(), p.name) for p in trust), workers=1)
    v = verify_bundle(s.exported.path, options)
    codes = {f.code for f in v.findings}
    assert codes == {"TIMESTAMP_INVALID"}, v.findings
    assert "claims a later integration" in v.findings[0].message and v.findings[0].leaf_index is not None


def test_the_bundle_lists_its_token_in_the_manifest(stamped: Stamped) -> None:
    import zipfile

    with zipfile.ZipFile(stamped.exported.path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "evidence-ledger-bundle/3"
        assert MEMBER in {f["path"] for f in manifest["files"]}
        assert zf.read(MEMBER)[:1] == b"\x30"  # DER SEQUENCE: the TSA's TimeStampResp as sent
    assert Actors  # the scenario's actors signed the bundle's events


def test_the_guide_s_openssl_commands_check_the_token_by_hand(stamped: Stamped, tmp_path: Path) -> None:
    import subprocess
    import zipfile

    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(stamped.exported.path) as zf:
        zf.extractall(folder)
        guide = zf.read("HOW-TO-VERIFY.txt").decode()
    commands = [line.strip() for line in guide.splitlines() if line.strip().startswith(("head -n 3", "openssl ts"))]
    assert len(commands) == 3
    (folder / "TSA-CA.pem").write_bytes(stamped.tsa.ca_pem.read_bytes())
    outputs = [subprocess.run(c, shell=True, cwd=folder, capture_output=True, text=True, check=False)  # noqa: S602
               for c in commands]
    assert "Verification: OK" in outputs[1].stdout, outputs[1].stderr
    assert "Time stamp:" in outputs[2].stdout
    (folder / "checkpoint.txt").write_text((folder / "checkpoint.txt").read_text().replace("\n", "\n\n", 1))
    again = [subprocess.run(c, shell=True, cwd=folder, capture_output=True, text=True, check=False)  # noqa: S602
             for c in commands[:2]]
    assert "Verification: OK" not in again[1].stdout  # another body: the imprint does not match
