"""`evidence-ledger init`: create a data dir, its keys, its tables and the key registry's trust root."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError, MalformedInputError
from ledger import note
from ledger.append import Receipt
from ledger.canonical import format_time
from ledger.envelope import REGISTRY_CASE_ID
from ledger.keys import generate_key_pair, key_id, load_private_key, raw_public_key
from ledger.sealed import DepartmentKey
from ledger.settings import CONFIG_FILE, ConfigurationError, LedgerConfig, Settings, key_path
from ledger.store import Ledger

ORIGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}$")
SERVICE_ACTOR = "evidence-ledger-service"


@dataclass(frozen=True)
class InitResult:
    origin: str
    admin_key_id: str
    log_verifier_key: str
    data_dir: Path


def registry_body(
    public: bytes, *, actor: str, role: str, authority: str | None, valid_from: datetime
) -> dict[str, Any]:
    return {
        "key_id": key_id(public),
        "public_key": base64.b64encode(public).decode("ascii"),
        "actor": actor,
        "role": role,
        "authority": authority,
        "valid_from": format_time(valid_from),
    }


def log_verifier_key(config: LedgerConfig, log_key: Ed25519PrivateKey) -> str:
    return str(note.make_verifier_key(config.log_key_name, raw_public_key(log_key), note.SIG_TYPE_ED25519))


def init_data_dir(data_dir: Path, origin: str, settings: Settings, *, now: datetime) -> InitResult:
    """Create keys (mode 0600), config, tables and the self-signed trust root; refuse to overwrite."""
    if not ORIGIN_RE.fullmatch(origin):
        raise MalformedInputError(
            "origin must be a schema-less name like 'cambridgema.gov/evidence-ledger' (no spaces or '+')",
            code="BAD_ORIGIN",
        )
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigurationError(f"{data_dir} is already initialised")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    admin = generate_key_pair(key_path(data_dir, "admin"))
    log_key = generate_key_pair(key_path(data_dir, "log"))
    service = generate_key_pair(key_path(data_dir, "service"))
    if not (data_dir / "seal.key").exists():
        DepartmentKey.create(data_dir / "seal.key")
    config = LedgerConfig(origin=origin, admin_key_id=key_id(admin), log_key_name=origin)
    config.save(data_dir)
    ledger = Ledger(settings.model_copy(update={"data_dir": data_dir}), create_tables=True, clock=lambda: now)
    try:
        root = registry_body(
            raw_public_key(admin), actor="admin", role="admin", authority=None, valid_from=now
        )
        ledger.sign_and_append(admin, REGISTRY_CASE_ID, "KeyRegistered", root)
        svc = registry_body(
            raw_public_key(service), actor=SERVICE_ACTOR, role="service", authority=None, valid_from=now
        )
        ledger.sign_and_append(admin, REGISTRY_CASE_ID, "KeyRegistered", svc)
        ledger.checkpoint()
    finally:
        ledger.close()
    return InitResult(origin, config.admin_key_id, log_verifier_key(config, log_key), data_dir)


def register_key(
    ledger: Ledger, admin_key_file: Path, public: bytes, *, actor: str, role: str, authority: str | None
) -> Receipt:
    admin = load_private_key(admin_key_file)
    body = registry_body(public, actor=actor, role=role, authority=authority, valid_from=ledger.clock())
    return ledger.sign_and_append(admin, REGISTRY_CASE_ID, "KeyRegistered", body)


def revoke_key(
    ledger: Ledger, admin_key_file: Path, revoked_key_id: str, *, reason: str, compromised_since: str | None
) -> Receipt:
    admin = load_private_key(admin_key_file)
    body: dict[str, Any] = {"key_id": revoked_key_id, "reason": reason}
    if compromised_since is not None:
        body["compromised_since"] = compromised_since
    return ledger.sign_and_append(admin, REGISTRY_CASE_ID, "KeyRevoked", body)


__all__ = ["InitResult", "LedgerError", "init_data_dir", "register_key", "revoke_key"]
