"""The command line's shape: --version, -h, --json everywhere, exit codes, errors that name the next
step, no overwritten bundle, progress bars only for people, `log checkpoints`."""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from domain.events import EVENT_TYPES
from ledger.cli.app import commands, package_version
from ledger.cli.errors import EXIT_CODES
from ledger.cli.progress import progress_bar, wanted
from ledger.envelope.keys import key_id, write_private_key
from ledger.store import Ledger
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id
from tests.support.cli import Cli, command_tree, error_line, leaves

#: commands whose output is an artifact kept as it is (a key, a signed note, leaf bytes, a proof, the
#: registry head an offline admin signs against, stored envelopes), or that run a server: no --json
ARTIFACTS = {
    "serve", "witness serve", "log key", "log checkpoint", "log entry", "log prove-inclusion",
    "log prove-consistency", "keys head", "case events", "case custody", "sealed disclose",
}
#: commands that print JSON meant to be pasted into an event or kept (README, "Output, exit codes, help")
ALWAYS_JSON = {"seal"}








def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(commands(), ["--version"])
    assert result.exit_code == 0 and result.stdout == f"evidence-ledger {package_version()}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", package_version())


def test_every_command_and_group_takes_dash_h() -> None:
    runner = CliRunner()
    groups = {"", "keys", "case", "log", "tokens", "evidence", "trust", "witness", "db", "sealed", "retention"}
    for path, _ in [*leaves(command_tree()), *((g, None) for g in groups)]:
        args = [*path.split(), "-h"] if path else ["-h"]
        result = runner.invoke(commands(), args)
        assert result.exit_code == 0 and "Usage:" in result.stdout, (path, result.output)


def test_help_shows_the_exit_codes_and_completion() -> None:
    result = CliRunner().invoke(commands(), ["--help"], terminal_width=200)
    text = " ".join(result.stdout.split())
    assert result.exit_code == 0 and "--install-completion" in text
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}" in text
    assert set(EXIT_CODES) == {0, 1, 2, 3, 4}


def test_every_reporting_command_has_json() -> None:
    missing = {path for path, cmd in leaves(command_tree()) if "--json" not in {o for p in cmd.params for o in p.opts}}
    assert missing == ARTIFACTS | ALWAYS_JSON


# -- errors, run through the CLI on a real data dir -------------------------------------------------------------





@pytest.fixture
def cli(ledger: Ledger, database_url: str | None, tmp_path: Path) -> Cli:
    return Cli(ledger, database_url, tmp_path)





def test_an_unknown_key_names_the_key_and_how_to_register_it(cli: Cli, tmp_path: Path) -> None:
    stranger = Ed25519PrivateKey.generate()
    write_private_key(stranger, tmp_path / "stranger.pem")
    line = error_line(cli.append(new_case_id(), "CaseOpened", tmp_path / "stranger.pem", case_opened(), code=1))
    assert "UNKNOWN_KEY" in line and key_id(stranger) in line
    assert "evidence-ledger keys register --public-key" in line and "POST /v1/keys" in line


def test_a_closed_case_names_the_reopening_event_and_who_may_append_it(cli: Cli) -> None:
    case_id = new_case_id()
    cli.append(case_id, "CaseOpened", "investigator", case_opened())
    cli.append(case_id, "CaseClosed", "supervisor", {"disposition": "referred"})
    line = error_line(cli.append(case_id, "FootageCaptured", "investigator", footage_captured(), code=1))
    reopeners = sorted(EVENT_TYPES["CaseReopened"].RULES.roles)
    assert "CASE_CLOSED" in line and "CaseReopened" in line and all(f"'{r}'" in line for r in reopeners)


def test_a_role_refusal_says_which_roles_may(cli: Cli) -> None:
    line = error_line(cli.append(new_case_id(), "CaseOpened", "prosecutor", case_opened(), code=1))
    allowed = EVENT_TYPES["CaseOpened"].RULES.roles
    assert "ROLE_NOT_ALLOWED" in line and all(f"'{r}'" in line for r in allowed) and "may" in line


def test_an_extra_field_is_named_and_an_invalid_body_is_said_once(cli: Cli) -> None:
    line = error_line(cli.append(new_case_id(), "CaseOpened", "investigator", {**case_opened(), "sumary": "x"}, code=1))
    assert "'sumary' (did you mean 'summary'?)" in line
    assert line.count("the allowed fields are: case_number, category, summary") == 1
    assert "field=body" not in line  # the field the message opens with is not repeated as a ref


@pytest.mark.parametrize("typed", ["caseOpened", "caseopened", "CaseOpend"])
def test_a_misspelt_event_type_suggests_the_closest_and_the_list(cli: Cli, typed: str) -> None:
    line = error_line(cli.append(new_case_id(), typed, "investigator", case_opened(), code=2))  # unusable input
    assert "did you mean CaseOpened?" in line and "evidence-ledger events list" in line


def test_a_missing_case_names_the_id_and_where_it_looked(cli: Cli) -> None:
    missing = new_case_id()
    line = error_line(cli.run("case", "show", missing, code=1))
    assert "CASE_NOT_FOUND" in line and missing in line and str(cli.ledger.data_dir) in line


def test_a_mistyped_data_dir_is_not_an_invitation_to_init(cli: Cli, tmp_path: Path) -> None:
    typo = tmp_path / "dtaa"
    line = error_line(cli.run("case", "show", new_case_id(), "--data-dir", str(typo), code=2))
    assert f"{typo} does not exist" in line and "--data-dir / EVIDENCE_LEDGER_DATA_DIR" in line
    assert "creates a new, separate ledger" in line and not typo.exists()


def test_a_token_for_an_actor_without_a_key_is_refused(cli: Cli) -> None:
    result = cli.run("tokens", "issue", "--actor", "Det. A. Rivers", "--role", "investigator", code=1)
    line = error_line(result)
    assert "NO_ACTIVE_KEY" in line and "'Det. A. Rivers'" in line and "keys list" in line


def test_an_unreachable_server_is_exit_3_naming_the_url(cli: Cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = cli.run("append", new_case_id(), "CaseOpened", "--key", cli.key_file("investigator"),
                     "--body", json.dumps(case_opened()), "--server", url, "--token", "t0k", code=3)
    line = error_line(result)
    assert f"SERVER_UNREACHABLE: cannot reach {url}/" in line and "(connection refused)" in line
    assert "is the server running? check the URL (--server)" in line and "t0k" not in line


def test_append_prints_text_or_the_receipt_with_json(cli: Cli) -> None:
    case_id = new_case_id()
    text = cli.append(case_id, "CaseOpened", "investigator", case_opened()).stdout
    line, signed = text.split("\n", 1)
    assert re.fullmatch(rf"appended CaseOpened as seq 1 of case {case_id}: leaf \d+, event \S+, at \S+", line)
    assert signed.startswith("evidence-ledger receipt v1\n") and signed.endswith("\n")
    key = cli.key_file("investigator")
    result = cli.run("append", case_id, "FootageCaptured", "--key", key, "--body", json.dumps(footage_captured()),
                     "--json", code=0)
    receipt = json.loads(result.stdout)
    assert (receipt["case_id"], receipt["seq"]) == (case_id, 2)


def test_keys_list_and_tokens_issue_in_text_and_json(cli: Cli) -> None:
    listed = json.loads(cli.run("keys", "list", "--json", code=0).stdout)
    text = cli.run("keys", "list", code=0).stdout
    assert text.startswith(f"trust root {listed['root_key_id']}")
    assert all(k["key_id"] in text for k in listed["keys"])
    issued = cli.run("tokens", "issue", "--actor", "Det. A. Rivera", "--role", "investigator", "--json", code=0)
    doc = json.loads(issued.stdout)
    assert doc["token"].startswith("elt_") and doc["actor"] == "Det. A. Rivera" and doc["status"] == "active"


# -- export, progress ----------------------------------------------------------------------------------------


def test_export_never_overwrites_without_force_and_shows_no_progress_off_a_terminal(cli: Cli, tmp_path: Path) -> None:
    case_id = new_case_id()
    cli.append(case_id, "CaseOpened", "investigator", case_opened())
    out = tmp_path / "case.zip"
    out.write_bytes(b"an earlier bundle")
    line = error_line(cli.run("export", case_id, "--out", str(out), code=2))
    assert str(out) in line and "--force" in line and out.read_bytes() == b"an earlier bundle"
    done = cli.run("export", case_id, "--out", str(out), "--force", code=0)
    assert done.stderr == "" and done.stdout.startswith(f"wrote {out} (")  # CliRunner's stderr is no terminal
    verified = cli.run("verify", str(out), "--json", "--allow-unpinned", code=0)
    assert verified.stderr == "" and json.loads(verified.stdout)["verdict"] == "unpinned"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_only_for_a_terminal_and_never_with_json() -> None:
    assert wanted(stream=Tty()) and not wanted(as_json=True, stream=Tty()) and not wanted(stream=io.StringIO())
    with progress_bar("x", enabled=False) as report:
        assert report is None


def test_progress_is_reported_per_chunk(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.evidence.bundle import export_bundle
    from ledger.evidence.footage import CHUNK, store_for
    from ledger.verify import VerifyOptions, verify_bundle

    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00" * (2 * CHUNK + 5))
    seen: list[tuple[str, int, int]] = []
    sha, size, _ = store_for(ledger.data_dir).put_file(source, progress=lambda *a: seen.append(a))
    assert seen[0] == ("storing", 0, size) and seen[-1] == ("storing", size, size) and len(seen) == 4
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", {**footage_captured(), "sha256": sha, "size_bytes": size,
                                                          "stored": True})
    ledger.checkpoint()
    ledger.access_log.checkpoint()
    seen.clear()
    export_bundle(ledger, case_id, tmp_path / "b.zip", with_media=True, progress=lambda *a: seen.append(a))
    assert [s for s in seen if s[0] == "writing media"][-1] == ("writing media", size, size)
    assert len(seen) >= 3  # one per chunk
    seen.clear()
    verify_bundle(tmp_path / "b.zip", VerifyOptions(workers=1), progress=lambda *a: seen.append(a))
    stages = [s[0] for s in seen]
    assert stages[0] == "hashing the bundle" and "reading files" in stages and stages[-1] == "checking"
    reading = [s for s in seen if s[0] == "reading files"]
    assert reading[-1][1] == reading[-1][2] >= size and len(reading) >= 4


# -- log checkpoints ---------------------------------------------------------------------------------------------


def test_log_checkpoints_lists_the_signed_sizes(cli: Cli) -> None:
    cli.append(new_case_id(), "CaseOpened", "investigator", case_opened())
    cli.run("log", "checkpoint", code=0)
    doc = json.loads(cli.run("log", "checkpoints", "--json", code=0).stdout)
    sizes = [c["size"] for c in doc["items"]]
    assert sizes == sorted(sizes) and sizes[-1] == cli.ledger.log_size()
    assert set(doc["items"][0]) == {"size", "signed_at", "root_hash", "root_b64", "cosignatures"}
    text = cli.run("log", "checkpoints", code=0).stdout
    assert all(re.search(rf"^\s*{s}\s", text, re.M) for s in sizes)
    for size in sizes:  # every listed size can be fetched
        assert cli.run("log", "checkpoint", "--size", str(size), code=0).stdout.split("\n")[1] == str(size)
    line = error_line(cli.run("log", "checkpoint", "--size", str(sizes[-1] + 100), code=1))
    assert "NO_CHECKPOINT" in line and "evidence-ledger log checkpoints" in line


def test_log_checkpoints_of_a_log_without_entries_says_so(tmp_path: Path) -> None:
    """A production ledger before its genesis (`init --admin-public-key`): no entries, no checkpoint."""
    runner, data = CliRunner(), str(tmp_path / "data")
    public = runner.invoke(commands(), ["keys", "new", "--name", "pub", "--out", str(tmp_path / "pub.pem")])
    assert public.exit_code == 0, public.output
    init = runner.invoke(commands(), ["init", "--data-dir", data, "--origin", "empty.example/log",
                                      "--admin-public-key", str(tmp_path / "pub.pem.pub")])
    assert init.exit_code == 0, init.output
    text = runner.invoke(commands(), ["log", "checkpoints", "--data-dir", data])
    assert text.exit_code == 0 and text.stdout.startswith("no checkpoint signed yet"), text.output
    doc = runner.invoke(commands(), ["log", "checkpoints", "--json", "--data-dir", data])
    assert doc.exit_code == 0 and json.loads(doc.stdout) == {"items": []}, doc.output
