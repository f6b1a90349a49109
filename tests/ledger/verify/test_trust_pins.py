"""Verification needs pinned trust: VERIFIED only with the log key and the trust root pinned.

`evidence-ledger verify` runs in a fresh interpreter that cannot import FastAPI, Starlette,
eventsourcing, psycopg or sqlite3 (``tests.bundle_support.run_verify``). The pin file is looked up
under a per-test ``$XDG_CONFIG_HOME``, so a developer's own pins never leak into a test.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from ledger.cli.app import app, commands
from ledger.log import note
from ledger.log.proof_json import consistency_proof_json, inclusion_proof_json
from ledger.store import Ledger
from ledger.verify.trust import (
    LogPin,
    PinFile,
    PinFileError,
    load_pins,
    parse_pin_file,
    read_pin_file,
    render_pin_file,
)
from tests.support.bundles import Exported, flip_sig, run_offline, run_verify, tampered
from tests.support.cases import Actors, case_opened, new_case_id

commands()


@pytest.fixture(autouse=True)
def own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config dir: the default pin file is $XDG_CONFIG_HOME/evidence-ledger/trust.toml."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("EVIDENCE_LEDGER_TRUST_FILE", raising=False)
    return config


def fresh_public_key() -> Any:
    return Ed25519PrivateKey.generate().public_key()


def other_log_key(origin: str) -> note.VerifierKey:
    """A well-formed log key for ``origin`` that is not the log's."""
    return note.make_verifier_key(origin, fresh_public_key())


def witness_key(name: str = "w.example/w") -> note.VerifierKey:
    return note.make_verifier_key(name, fresh_public_key(), note.SIG_TYPE_COSIGNATURE_V1)


def write_pins(path: Path, *pins: LogPin) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_pin_file(PinFile(path, pins)))
    return path


def pin_for(exported: Exported, *, trust_root: bool = True, origin: str | None = None) -> LogPin:
    return LogPin(
        origin or exported.ledger.origin,
        note.parse_verifier_key(exported.log_vkey),
        exported.trust_root if trust_root else None,
    )


def verify_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_verify(*args, "--json")
    assert "LEAKED" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


# --- evidence-ledger verify: verdicts and exit codes -------------------------------------------------


def test_verify_without_pins_is_unpinned_with_exit_3(exported: Exported) -> None:
    result = run_verify(str(exported.path))
    assert result.returncode == 4, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == "EVIDENCE BUNDLE VERIFICATION: UNPINNED"
    assert "VERIFIED" not in result.stdout
    assert "the log verifier key (--vkey) and the trust root (--trust-root)" in result.stdout
    assert f"evidence-ledger trust pin --origin {exported.ledger.origin}" in result.stdout

    rc, report = verify_json(str(exported.path))
    assert rc == 4 and report["verdict"] == "unpinned" and report["exit_code"] == 4
    assert report["verified"] is False and report["findings"] == []
    assert report["pins"]["missing"] == ["--vkey", "--trust-root"]
    assert report["pins"]["log_key"] == {"pinned": False, "source": None}
    assert report["trust_root"]["pinned"] is False and report["checkpoint"]["key_source"] == "bundle"
    for field in ("report_format", "bundle", "manifest", "steps", "case", "timeline", "keys", "caveats"):
        assert field in report  # the fields consumers already read are all still there


@pytest.mark.parametrize(
    ("given", "missing", "named", "not_named"),
    [
        ("vkey", ["--trust-root"], "the trust root (--trust-root)", "the log verifier key (--vkey)"),
        ("trust_root", ["--vkey"], "the log verifier key (--vkey)", "the trust root (--trust-root)"),
    ],
)
def test_one_pin_alone_is_unpinned_and_names_the_missing_one(
    exported: Exported, given: str, missing: list[str], named: str, not_named: str
) -> None:
    args = ["--vkey", exported.log_vkey] if given == "vkey" else ["--trust-root", exported.trust_root]
    result = run_verify(str(exported.path), *args)
    assert result.returncode == 4, result.stderr
    assert "UNPINNED" in result.stdout and "VERIFIED" not in result.stdout
    assert f"not pinned: {named}," in result.stdout and not_named not in result.stdout
    rc, report = verify_json(str(exported.path), *args)
    assert rc == 4 and report["verdict"] == "unpinned" and report["pins"]["missing"] == missing


def test_allow_unpinned_exits_0_but_never_says_verified(exported: Exported, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = run_verify(str(exported.path), "--allow-unpinned", "--html", str(html))
    assert result.returncode == 0, result.stderr
    assert "UNPINNED" in result.stdout and "VERIFIED" not in result.stdout
    assert "--allow-unpinned: exit code 0; the verdict stays UNPINNED" in result.stdout
    assert "VERIFIED" not in html.read_text("utf-8")
    rc, report = verify_json(str(exported.path), "--allow-unpinned", "--vkey", exported.log_vkey)
    assert rc == 0 and report["verdict"] == "unpinned" and report["exit_code"] == 0
    assert report["verified"] is False and report["pins"]["allow_unpinned"] is True


def test_the_html_report_shows_an_amber_unpinned_banner(exported: Exported, tmp_path: Path) -> None:
    unpinned, pinned = tmp_path / "unpinned.html", tmp_path / "pinned.html"
    assert (
        run_verify(str(exported.path), "--vkey", exported.log_vkey, "--html", str(unpinned)).returncode == 4
    )
    page = unpinned.read_text("utf-8")
    assert '<p class="verdict unpinned">UNPINNED' in page and "verdict ok" not in page
    assert ".unpinned{border-color:#b45309" in page  # amber, not the green of .ok
    assert "not pinned: the trust root (--trust-root)" in page and "VERIFIED" not in page
    pins = ("--vkey", exported.log_vkey, "--trust-root", exported.trust_root)
    assert run_verify(str(exported.path), *pins, "--html", str(pinned)).returncode == 0
    page = pinned.read_text("utf-8")
    assert '<p class="verdict ok">VERIFIED</p>' in page and "verdict unpinned" not in page


def test_a_tampered_bundle_without_pins_fails_with_exit_1(exported: Exported, tmp_path: Path) -> None:
    def change(m: dict[str, bytes]) -> None:
        flip_sig(m, max(int(n.split("/")[1].split(".")[0]) for n in m if n.startswith("envelopes/")))

    path = tampered(exported.path, tmp_path / "t.zip", change)
    for extra in ([], ["--allow-unpinned"]):
        result = run_verify(str(path), *extra)
        assert result.returncode == 1, result.stderr
        assert result.stdout.startswith("EVIDENCE BUNDLE VERIFICATION: FAILED (")
        rc, report = verify_json(str(path), *extra)
        assert rc == 1 and report["verdict"] == "failed" and report["exit_code"] == 1
        assert report["verified"] is False and report["findings"]


# --- the pin file ------------------------------------------------------------------------------------


def test_a_pin_file_supplies_both_pins(exported: Exported, tmp_path: Path, own_config: Path) -> None:
    default = write_pins(own_config / "evidence-ledger" / "trust.toml", pin_for(exported))
    rc, report = verify_json(str(exported.path))  # found at the default place
    assert rc == 0 and report["verdict"] == "verified" and report["verified"] is True
    assert report["checkpoint"]["key_source"] == "pin file"
    assert report["pins"]["log_key"] == {"pinned": True, "source": f"pin file {default}"}
    assert report["trust_root"]["source"] == f"pin file {default}" and report["pins"]["missing"] == []
    text = run_verify(str(exported.path)).stdout
    assert text.startswith("EVIDENCE BUNDLE VERIFICATION: VERIFIED\n")
    assert f"pinned by the pin file {default}" in text and f"from the pin file {default}" in text

    default.unlink()
    named = write_pins(tmp_path / "elsewhere.toml", pin_for(exported))
    assert verify_json(str(exported.path), "--trust", str(named))[0] == 0
    env_run = run_offline("verify", str(exported.path), env={"EVIDENCE_LEDGER_TRUST_FILE": str(named)})
    assert env_run.returncode == 0 and "VERIFIED" in env_run.stdout, env_run.stdout + env_run.stderr


def test_a_pin_file_without_trust_root_pins_only_the_log_key(exported: Exported, tmp_path: Path) -> None:
    pins = write_pins(tmp_path / "p.toml", pin_for(exported, trust_root=False))
    rc, report = verify_json(str(exported.path), "--trust", str(pins))
    assert rc == 4 and report["pins"]["missing"] == ["--trust-root"]
    rc, report = verify_json(str(exported.path), "--trust", str(pins), "--trust-root", exported.trust_root)
    assert rc == 0 and report["verdict"] == "verified"
    assert report["pins"]["trust_root"]["source"] == "--trust-root"


def test_a_pin_for_another_origin_does_not_apply(exported: Exported, tmp_path: Path) -> None:
    pins = write_pins(tmp_path / "p.toml", pin_for(exported, origin="elsewhere.example/log"))
    rc, report = verify_json(str(exported.path), "--trust", str(pins))
    assert rc == 4 and report["verdict"] == "unpinned" and report["checkpoint"]["key_source"] == "bundle"
    assert f"The pin file {pins} has no entry for the origin {exported.ledger.origin}." in report["caveats"]


def test_command_line_options_override_the_pin_file(exported: Exported, tmp_path: Path) -> None:
    origin = exported.ledger.origin
    wrong = write_pins(tmp_path / "wrong.toml", LogPin(origin, other_log_key(origin), "0" * 64))
    rc, report = verify_json(str(exported.path), "--trust", str(wrong))
    assert rc == 1 and {f["code"] for f in report["findings"]} == {"BAD_CHECKPOINT", "UNKNOWN_KEY"}
    rc, report = verify_json(
        str(exported.path),
        "--trust",
        str(wrong),
        "--vkey",
        exported.log_vkey,
        "--trust-root",
        exported.trust_root,
    )
    assert rc == 0 and report["verdict"] == "verified", report["findings"]
    assert report["checkpoint"]["key_source"] == "--vkey"


def test_pinned_witnesses_apply_with_their_minimum(exported: Exported, tmp_path: Path) -> None:
    origin = exported.ledger.origin
    absent = witness_key()
    base = pin_for(exported)
    strict = write_pins(tmp_path / "s.toml", LogPin(origin, base.vkey, base.trust_root, (absent,)))
    rc, report = verify_json(str(exported.path), "--trust", str(strict))
    assert rc == 1 and {f["code"] for f in report["findings"]} == {"WITNESS_POLICY"}
    assert report["checkpoint"]["witness_source"] == "pin file"
    lenient = write_pins(tmp_path / "l.toml", LogPin(origin, base.vkey, base.trust_root, (absent,), 0))
    assert verify_json(str(exported.path), "--trust", str(lenient))[0] == 0


BAD_PIN_FILES = {
    "not TOML": b"[[log]\n",
    "not UTF-8": b'[[log]]\norigin = "\xff"\n',
    "unknown top-level key": b"version = 1\n",
    "log is not tables": b'log = "x"\n',
    "unknown key": b'[[log]]\norigin = "o"\nvkey = "@VKEY@"\ntrust-root = "@ROOT@"\n',
    "no vkey": b'[[log]]\norigin = "o"\n',
    "bad vkey": b'[[log]]\norigin = "o"\nvkey = "o+00000000+AAAA"\n',
    "witness key as vkey": b'[[log]]\norigin = "o"\nvkey = "@WITNESS@"\n',
    "short trust root": b'[[log]]\norigin = "o"\nvkey = "@VKEY@"\ntrust_root = "abc"\n',
    "min above witnesses": b'[[log]]\norigin = "o"\nvkey = "@VKEY@"\nmin_witnesses = 1\n',
    "min is a string": b'[[log]]\norigin = "o"\nvkey = "@VKEY@"\nmin_witnesses = "1"\n',
    "twice": b'[[log]]\norigin = "o"\nvkey = "@VKEY@"\n[[log]]\norigin = "o"\nvkey = "@VKEY@"\n',
}


def _bad_pin_file(path: Path, name: str) -> Path:
    vkey = str(other_log_key("o"))
    witness = str(witness_key("w"))
    data = BAD_PIN_FILES[name].replace(b"@VKEY@", vkey.encode()).replace(b"@WITNESS@", witness.encode())
    path.write_bytes(data.replace(b"@ROOT@", b"0" * 64))
    return path


@pytest.mark.parametrize("name", sorted(BAD_PIN_FILES))
def test_malformed_pin_files_are_refused_in_one_line(tmp_path: Path, name: str) -> None:
    path = _bad_pin_file(tmp_path / "trust.toml", name)
    with pytest.raises(PinFileError) as caught:
        read_pin_file(path)
    message = str(caught.value)
    assert message.startswith(f"pin file {path}: ") and "\n" not in message


def test_a_malformed_pin_file_is_unusable_input(exported: Exported, tmp_path: Path, own_config: Path) -> None:
    bad = _bad_pin_file(tmp_path / "bad.toml", "unknown key")
    result = run_verify(str(exported.path), "--trust", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: BAD_PIN_FILE: pin file {bad}: [[log]] number 1: unknown key "
        "'trust-root' (allowed: origin, vkey, trust_root, witnesses, "
        "min_witnesses, profile, tsa_certs)"
    ]
    missing = run_verify(str(exported.path), "--trust", str(tmp_path / "absent.toml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    default = own_config / "evidence-ledger" / "trust.toml"
    default.parent.mkdir(parents=True)
    _bad_pin_file(default, "not TOML")
    pins = ("--vkey", exported.log_vkey, "--trust-root", exported.trust_root)
    result = run_verify(str(exported.path), *pins)  # even when both pins are given: never ignored silently
    assert result.returncode == 2 and "not valid TOML" in result.stderr and "Traceback" not in result.stderr


def test_the_pin_file_reads_back_as_written(tmp_path: Path) -> None:
    origin = 'odd "origin" \\ with ünïcode'
    witnesses = (witness_key("w1.example/w"), witness_key("w2.example/w"))
    pins = PinFile(
        tmp_path / "t.toml",
        (
            LogPin(origin, other_log_key("a"), "ab" * 32, witnesses, 1),
            LogPin("b.example", other_log_key("b")),
        ),
    )
    assert parse_pin_file(render_pin_file(pins), pins.path) == pins
    replaced = pins.with_pin(LogPin("b.example", other_log_key("b2")))
    assert [p.origin for p in replaced.logs] == [origin, "b.example"] and replaced.logs[1].vkey.name == "b2"


def test_where_the_pin_file_is_looked_up(tmp_path: Path) -> None:
    home_config = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    assert load_pins(None, home_config) is None  # the default file is optional
    with pytest.raises(PinFileError, match="from \\$EVIDENCE_LEDGER_TRUST_FILE"):
        load_pins(None, {**home_config, "EVIDENCE_LEDGER_TRUST_FILE": str(tmp_path / "none.toml")})
    with pytest.raises(PinFileError, match="from --trust"):
        load_pins(tmp_path / "none.toml", home_config)
    default = write_pins(tmp_path / "cfg" / "evidence-ledger" / "trust.toml", LogPin("a", other_log_key("a")))
    found = load_pins(None, home_config)
    assert found is not None and found.path == default and found.get("a") is not None


# --- evidence-ledger trust pin / show ------------------------------------------------------------------


def run_cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args[:2]} exited {result.exit_code}: {result.output}"
    return result


def test_trust_pin_writes_a_private_pin_file_that_verify_uses(exported: Exported, own_config: Path) -> None:
    origin = exported.ledger.origin
    first = run_cli("trust", "pin", "--origin", origin, "--vkey", str(other_log_key(origin)))
    path = own_config / "evidence-ledger" / "trust.toml"
    assert f"pinned for {origin} in {path}" in first.stdout and "trust root: not pinned" in first.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = run_cli(
        "trust", "pin", "--origin", origin, "--vkey", exported.log_vkey, "--trust-root", exported.trust_root
    )
    assert f"replaced the pin for {origin}" in again.stdout
    run_cli(
        "trust", "pin", "--origin", "other.example/log", "--vkey", str(other_log_key("other.example/log"))
    )
    pins = read_pin_file(path)
    assert [p.origin for p in pins.logs] == [origin, "other.example/log"]
    assert str(pins.logs[0].vkey) == exported.log_vkey and pins.logs[0].trust_root == exported.trust_root
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    shown = run_cli("trust", "show").stdout
    assert (
        f"pin file {path}: 2 log(s)" in shown and exported.log_vkey in shown and exported.trust_root in shown
    )
    doc = json.loads(run_cli("trust", "show", "--json", "--origin", origin).stdout)
    assert doc["pin_file"] == str(path) and doc["exists"] is True
    assert doc["logs"] == [
        {
            "origin": origin,
            "vkey": exported.log_vkey,
            "trust_root": exported.trust_root,
            "witnesses": [],
            "min_witnesses": None,
            "tsa_certs": [],
        }
    ]
    run_cli("trust", "show", "--origin", "nowhere.example", code=1)

    rc, report = verify_json(str(exported.path))
    assert rc == 0 and report["verdict"] == "verified"


def test_trust_pin_refuses_bad_arguments_and_a_malformed_file(tmp_path: Path) -> None:
    target = str(tmp_path / "p.toml")
    log_key, witness = str(other_log_key("o")), str(witness_key("w"))
    for args in (
        ["--origin", "o", "--vkey", "nonsense"],
        ["--origin", "o", "--vkey", witness],
        ["--origin", "o", "--vkey", log_key, "--witness", log_key],
        ["--origin", "o", "--vkey", log_key, "--trust-root", "ABC"],
        ["--origin", "o", "--vkey", log_key, "--witness", witness, "--min-witnesses", "2"],
        ["--origin", "", "--vkey", log_key],
    ):
        result = run_cli("trust", "pin", "--trust", target, *args, code=2)
        assert "Traceback" not in result.output
    assert not Path(target).exists()
    bad = _bad_pin_file(tmp_path / "bad.toml", "not TOML")
    before = bad.read_bytes()
    result = run_cli("trust", "pin", "--trust", str(bad), "--origin", "o", "--vkey", log_key, code=2)
    assert "fix or remove it first" in result.output and bad.read_bytes() == before
    run_cli("trust", "show", "--trust", str(bad), code=2)
    assert "no pin file" in run_cli("trust", "show").stdout


def test_trust_commands_import_no_driver_and_no_web_framework(exported: Exported, tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    for args in (
        [
            "trust",
            "pin",
            "--trust",
            str(path),
            "--origin",
            exported.ledger.origin,
            "--vkey",
            exported.log_vkey,
        ],
        ["trust", "show", "--trust", str(path)],
    ):
        result = run_offline(*args)
        assert result.returncode == 0 and "LEAKED" not in result.stderr, result.stdout + result.stderr
    assert exported.log_vkey in path.read_text("utf-8")


# --- log verify-*: the log key is the pin ---------------------------------------------------------------


class LogFiles:
    def __init__(self, ledger: Ledger, folder: Path) -> None:
        self.origin = ledger.origin
        self.vkey = str(note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key()))
        actors = Actors.register(ledger)
        old = ledger.checkpoint()
        assert old is not None
        receipt = actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        new = ledger.checkpoint()
        assert new is not None and new.size > old.size
        self.index = receipt.leaf_index
        self.old, self.new = folder / "old.txt", folder / "new.txt"
        self.old.write_bytes(old.with_cosignatures())
        self.new.write_bytes(new.with_cosignatures())
        self.leaf = folder / "leaf"
        self.leaf.write_bytes(ledger.leaf(self.index))
        self.inclusion, self.consistency = folder / "inclusion.json", folder / "consistency.json"
        proof = inclusion_proof_json(
            self.index, ledger.inclusion_proof(self.index, new.size), tree_size=new.size
        )
        self.inclusion.write_text(json.dumps(proof))
        cons = consistency_proof_json(
            ledger.consistency_proof(old.size, new.size), first=old.size, second=new.size
        )
        self.consistency.write_text(json.dumps(cons))

    def commands(self) -> dict[str, list[str]]:
        return {
            "verify-checkpoint": ["log", "verify-checkpoint", str(self.new)],
            "verify-inclusion": [
                "log",
                "verify-inclusion",
                "--checkpoint",
                str(self.new),
                "--leaf",
                str(self.leaf),
                "--proof",
                str(self.inclusion),
            ],
            "verify-consistency": [
                "log",
                "verify-consistency",
                "--old",
                str(self.old),
                "--new",
                str(self.new),
                "--proof",
                str(self.consistency),
            ],
        }


@pytest.fixture
def log_files(ledger: Ledger, tmp_path: Path) -> LogFiles:
    return LogFiles(ledger, tmp_path)


def test_log_verify_without_a_log_key_is_unpinned(log_files: LogFiles) -> None:
    for name, command in log_files.commands().items():
        out = run_cli(*command, code=4).stdout
        assert out.startswith("UNPINNED: ") and "verified" not in out.lower(), (name, out)
        assert f"no log key is pinned for {log_files.origin} (no pin file)" in out
        allowed = run_cli(*command, "--allow-unpinned").stdout
        assert allowed.startswith("UNPINNED: ") and "verified" not in allowed.lower(), (name, allowed)


def test_log_verify_without_a_log_key_still_checks_what_it_can(log_files: LogFiles) -> None:
    commands = log_files.commands()
    log_files.leaf.write_bytes(log_files.leaf.read_bytes().replace(b'"v":1', b'"v":2'))
    result = run_cli(*commands["verify-inclusion"], "--allow-unpinned", code=1)
    assert "verification failed" in result.output and "UNPINNED" not in result.output
    proof = json.loads(log_files.consistency.read_text())
    proof["consistency"] = [base64.b64encode(b"\x07" * 32).decode()] * max(1, len(proof["consistency"]))
    log_files.consistency.write_text(json.dumps(proof))
    run_cli(*commands["verify-consistency"], "--allow-unpinned", code=1)
    log_files.new.write_bytes(b"not a note")
    run_cli(*commands["verify-checkpoint"], "--allow-unpinned", code=2)


def test_log_verify_with_a_pin_file(log_files: LogFiles, tmp_path: Path, own_config: Path) -> None:
    run_cli("trust", "pin", "--origin", "elsewhere.example/log", "--vkey", log_files.vkey)
    for command in log_files.commands().values():
        out = run_cli(*command, code=4).stdout
        assert "has no entry for it" in out  # the pin is for another origin
    run_cli("trust", "pin", "--origin", log_files.origin, "--vkey", log_files.vkey)
    path = own_config / "evidence-ledger" / "trust.toml"
    for name, command in log_files.commands().items():
        out = run_cli(*command).stdout
        assert out.startswith("verified: ") and f"(log key pinned in {path})" in out, (name, out)
    wrong = write_pins(tmp_path / "wrong.toml", LogPin(log_files.origin, other_log_key(log_files.origin)))
    for command in log_files.commands().values():
        assert "verification failed" in run_cli(*command, "--trust", str(wrong), code=1).output
        run_cli(*command, "--trust", str(wrong), "--vkey", log_files.vkey)  # --vkey overrides the pin
    bad = _bad_pin_file(tmp_path / "bad.toml", "twice")
    for command in log_files.commands().values():
        assert "pinned twice" in run_cli(*command, "--trust", str(bad), code=2).output


def test_log_verify_with_a_wrong_vkey_still_fails(log_files: LogFiles) -> None:
    other = str(other_log_key(log_files.origin))
    for command in log_files.commands().values():
        result = run_cli(*command, "--vkey", other, "--allow-unpinned", code=1)
        assert "verification failed" in result.output and "UNPINNED" not in result.output
        assert run_cli(*command, "--vkey", log_files.vkey).stdout.startswith("verified: ")
    run_cli(*log_files.commands()["verify-checkpoint"], "--vkey", "not a key", code=2)
