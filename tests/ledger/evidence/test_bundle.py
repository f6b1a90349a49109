"""`evidence-ledger export`: what a bundle holds, exactly as stored, and the hand-check guide runs."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from domain.errors import NotFoundError
from ledger.bootstrap import register_key, revoke_key
from ledger.cli.app import app, commands
from ledger.envelope.canonical import canonical
from ledger.envelope.keys import generate_key_pair, key_id, raw_public_key
from ledger.evidence.bundle import bundle_bytes, export_bundle
from ledger.evidence.bundle_guide import guide_script
from ledger.evidence.footage import FootageStore
from ledger.log import merkle, note
from ledger.log.proof_json import parse_inclusion_proof
from ledger.settings import key_path
from ledger.store import Ledger
from ledger.verify import VerifyOptions, report_json, verify_bundle
from tests.support.bundles import (
    case_indexes,
    drop_entry,
    export_scenario,
    read_members,
    refresh_manifest,
    statement,
    tampered,
    write_members,
)
from tests.support.cases import FOOTAGE_BYTES, FOOTAGE_SHA, REDACTED_SHA, Actors, case_opened, new_case_id

commands()


def registry_keys(members: dict[str, bytes]) -> list[tuple[str, str]]:
    """(type, key id) of every registry envelope in the bundle, in leaf order."""
    rows = []
    for name in sorted((n for n in members if n.startswith("envelopes/")), key=lambda n: int(n[10:-5])):
        st = statement(members[name])
        if st["case_id"] == "00000000-0000-0000-0000-000000000000":
            rows.append((st["type"], st["body"]["key_id"]))
    return rows


def test_the_bundle_holds_the_case_exactly_as_stored(ledger: Ledger, tmp_path: Path) -> None:
    exported = export_scenario(ledger, tmp_path / "case.zip")
    members = read_members(exported.path)
    manifest = json.loads(members["manifest.json"])
    stored = {e.leaf_index: e for e in ledger.iter_entries()}
    case_leaves = sorted(i for i, e in stored.items() if e.case_id == exported.case_id)
    assert [members[f"envelopes/{i}.json"] for i in case_leaves] == ledger.case_envelopes(exported.case_id)
    for name in (n for n in members if n.startswith("envelopes/")):
        index = int(name[10:-5])
        assert (
            members[name] == stored[index].envelope and members[f"leaves/{index}.json"] == stored[index].leaf
        )
    checkpoint = ledger.checkpoint_at(manifest["checkpoint_size"])
    assert members["checkpoint.txt"] == checkpoint.with_cosignatures() and checkpoint.size == len(stored)
    for name in (n for n in members if n.startswith("proofs/")):
        index, path = parse_inclusion_proof(members[name], tree_size=checkpoint.size)
        merkle.verify_inclusion(
            merkle.leaf_hash(members[f"leaves/{index}.json"]), index, checkpoint.size, path, checkpoint.root
        )
    assert manifest["format"] == "evidence-ledger-bundle/3" and manifest["case_id"] == exported.case_id
    assert (manifest["access_entries"], manifest["access_checkpoint_size"]) == (0, None)  # no read recorded
    assert manifest["origin"] == ledger.origin and manifest["trust_root_key_id"] == ledger.config.admin_key_id
    assert manifest["case_events"] == 11 and "created_at" in manifest
    assert {f["path"] for f in manifest["files"]} == set(members) - {"manifest.json"}
    assert members["log.vkey"].decode().strip() == exported.log_vkey
    # The verifier's own tests use SQLite bundles; this one is exported from each backend.
    pins = VerifyOptions(vkey=note.parse_verifier_key(exported.log_vkey), trust_root=exported.trust_root)
    verified = report_json(verify_bundle(exported.path, pins))
    assert verified["verdict"] == "verified" and verified["findings"] == []


def test_member_order_is_fixed_and_the_manifest_comes_last(ledger: Ledger, tmp_path: Path) -> None:
    exported = export_scenario(ledger, tmp_path / "case.zip")
    names = list(read_members(exported.path))
    indexes = sorted(int(n[10:-5]) for n in names if n.startswith("envelopes/"))
    assert names == [
        "HOW-TO-VERIFY.txt",
        "verify.html",
        "checkpoint.txt",
        "log.vkey",
        *[f"envelopes/{i}.json" for i in indexes],
        *[f"leaves/{i}.json" for i in indexes],
        *[f"proofs/{i}.json" for i in indexes],
        "manifest.json",
    ]
    with zipfile.ZipFile(exported.path) as zf:
        assert len({info.date_time for info in zf.infolist()}) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_registry_part_is_closed_over_signers_admins_and_revocations(
    ledger: Ledger, tmp_path: Path
) -> None:
    admin_file = tmp_path / "admin2.pem"
    admin2 = generate_key_pair(admin_file)
    root_admin = key_path(ledger.data_dir, "admin")
    register_key(ledger, root_admin, raw_public_key(admin2), actor="Admin Two", role="admin", authority=None)
    actors = Actors(ledger)
    clerk = Ed25519PrivateKey.generate()
    register_key(
        ledger, admin_file, raw_public_key(clerk), actor="Clerk", role="investigator", authority=None
    )
    actors.keys["investigator"] = clerk
    unrelated = Ed25519PrivateKey.generate()
    register_key(ledger, root_admin, raw_public_key(unrelated), actor="Other", role="auditor", authority=None)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    revoke_key(ledger, root_admin, key_id(clerk), reason="rotated", compromised_since=None)
    ledger.checkpoint()
    export_bundle(ledger, case_id, tmp_path / "case.zip")
    members = read_members(tmp_path / "case.zip")
    assert registry_keys(members) == [
        ("KeyRegistered", ledger.config.admin_key_id),  # trust root
        ("KeyRegistered", key_id(admin2)),  # registered the signer
        ("KeyRegistered", key_id(clerk)),  # the signer
        ("KeyRevoked", key_id(clerk)),
    ]


def test_media_are_included_on_request_when_in_the_store(ledger: Ledger, tmp_path: Path) -> None:
    FootageStore(ledger.data_dir / "footage").put_stream([FOOTAGE_BYTES])
    exported = export_scenario(ledger, tmp_path / "with.zip", with_media=True)
    members = read_members(exported.path)
    assert [n for n in members if n.startswith("media/")] == [
        f"media/{FOOTAGE_SHA}"
    ]  # the derivative is not stored
    assert members[f"media/{FOOTAGE_SHA}"] == FOOTAGE_BYTES and f"media/{REDACTED_SHA}" not in members
    export_bundle(ledger, exported.case_id, tmp_path / "without.zip")
    assert not any(n.startswith("media/") for n in read_members(tmp_path / "without.zip"))


def test_bundle_bytes_and_unknown_cases(ledger: Ledger, tmp_path: Path) -> None:
    exported = export_scenario(ledger, tmp_path / "case.zip")
    data = bundle_bytes(ledger, exported.case_id)
    assert data[:2] == b"PK" and b"manifest.json" in data
    with pytest.raises(NotFoundError):
        bundle_bytes(ledger, new_case_id())
    with pytest.raises(NotFoundError):
        bundle_bytes(ledger, "00000000-0000-0000-0000-000000000000")


def test_an_export_only_reads_and_needs_a_checkpoint_covering_the_case(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.evidence.bundle import NotCheckpointed

    exported = export_scenario(ledger, tmp_path / "case.zip")
    exported.actors.ok("supervisor", exported.case_id, "CaseReopened", {"reason": "new witness"})
    size, latest = ledger.log_size(), ledger.latest_checkpoint()
    with pytest.raises(NotCheckpointed) as refused:
        export_bundle(ledger, exported.case_id, tmp_path / "late.zip")
    assert refused.value.code == "NOT_CHECKPOINTED" and not (tmp_path / "late.zip").exists()
    assert ledger.log_size() == size and ledger.latest_checkpoint() == latest  # nothing signed or appended


@pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("sh") is None, reason="needs openssl and sh"
)
@pytest.mark.parametrize("backend", ["sqlite"])  # the script reads the bundle only; its bytes do not depend on the backend
def test_the_guide_script_checks_every_entry_by_hand(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.witness.cosigner import Witness

    log_vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log_vkey))
    FootageStore(ledger.data_dir / "footage").put_stream([FOOTAGE_BYTES])
    exported = export_scenario(ledger, tmp_path / "case.zip", with_media=True)
    # Cosign the exported checkpoint out of band, so that the script also checks a witness line.
    members = read_members(exported.path)
    body = note.open_note(members["checkpoint.txt"])[0]
    members["checkpoint.txt"] += witness.add_checkpoint(0, [], members["checkpoint.txt"], now=time.time())
    members[f"witnesses/{witness.name.replace('/', '_')}.vkey"] = str(witness.verifier_key).encode() + b"\n"
    refresh_manifest(members)
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(write_members(members, tmp_path / "cosigned.zip")) as zf:
        zf.extractall(folder)
    script = tmp_path / "check.sh"
    guide = (folder / "HOW-TO-VERIFY.txt").read_text("utf-8")
    script.write_text(guide_script(guide))
    assert body and ledger.origin in guide and "python" not in guide_script(guide).lower()
    # Only POSIX tools, base64, sha256sum and OpenSSL on the PATH: no Python.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "sed", "awk", "od", "tail", "head", "cut", "tr", "grep", "wc", "cat", "mkdir", "ls", "sort",
                 "base64", "sha256sum", "openssl"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    env = {"PATH": str(tools), "LC_ALL": "C"}

    def run(index: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(script), str(index)], cwd=folder, env=env, capture_output=True, text=True, check=False,
            timeout=60,
        )

    indexes = sorted(int(n[10:-5]) for n in members if n.startswith("envelopes/"))
    for index in (indexes[0], indexes[1], indexes[-1]):  # trust root, a registration, the last case event
        result = run(index)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("Signature Verified Successfully") == 3  # event, checkpoint, witness
        assert f"entry {index} checked" in result.stdout and "media: media/" in result.stdout
        assert f"chain: case {exported.case_id}, seq 1..11, every prev matches" in result.stdout
    # An event removed, the manifest rewritten (a careful forger): the chain check stops it.
    gap = tmp_path / "gap"
    second = case_indexes(members, exported.case_id)[1]
    with zipfile.ZipFile(tampered(tmp_path / "cosigned.zip", tmp_path / "gap.zip", lambda m: drop_entry(m, second))) as zf:
        zf.extractall(gap)
    removed = subprocess.run(
        ["sh", str(script), str(indexes[0])], cwd=gap, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert removed.returncode != 0 and "chain broken at seq 3" in removed.stdout, removed.stdout + removed.stderr
    # A wrong proof, listed in the manifest as it is (a careful forger): the inclusion check stops it.
    proof = json.loads(members[f"proofs/{index}.json"])
    proof["audit_path"][0] = base64.b64encode(b"\x07" * 32).decode()
    forged_proof = canonical(proof)
    manifest = (folder / "manifest.json").read_text("utf-8")
    old_sha = hashlib.sha256(members[f"proofs/{index}.json"]).hexdigest()
    (folder / "manifest.json").write_text(manifest.replace(old_sha, hashlib.sha256(forged_proof).hexdigest()))
    (folder / "proofs" / f"{index}.json").write_bytes(forged_proof)
    result = run(index)
    assert result.returncode != 0 and "inclusion proof does not lead to the checkpoint's root" in result.stderr
    (folder / "leaves" / f"{index}.json").write_bytes(b"{}")
    assert run(index).returncode != 0  # the manifest check stops it


def test_the_export_command(ledger: Ledger, database_url: str | None, tmp_path: Path) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir)}
    if database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
    runner = CliRunner()
    result = runner.invoke(app, ["export", case_id, "--out", str(tmp_path / "b.zip")], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {tmp_path / 'b.zip'} (") and "1 events" in result.output
    before = (tmp_path / "b.zip").read_bytes()
    result = runner.invoke(app, ["export", case_id, "--out", str(tmp_path / "b.zip"), "--json"], env=env)
    assert result.exit_code == 2 and str(tmp_path / "b.zip") in result.output and "--force" in result.output
    assert (tmp_path / "b.zip").read_bytes() == before  # an existing bundle is never replaced silently
    result = runner.invoke(app, ["export", case_id, "--out", str(tmp_path / "b.zip"), "--json", "--force"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["case_events"] == 1
    result = runner.invoke(app, ["export", new_case_id(), "--out", str(tmp_path / "c.zip")], env=env)
    assert result.exit_code == 1 and "CASE_NOT_FOUND" in result.output
    result = runner.invoke(app, ["export", "not-a-uuid", "--out", str(tmp_path / "d.zip")], env=env)
    assert result.exit_code == 2
