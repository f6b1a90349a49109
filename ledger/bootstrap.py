"""`evidence-ledger init`: create a data dir, its keys, its tables and the key registry's trust root.

The trust root is the first admin key. In production it is generated on an offline machine
(`keys new`), only its public key comes to the server (`init --admin-public-key`), and every
registry change is an envelope the admin signs there (docs/keys.md). Demo mode keeps it in the
data dir, which `init`, `serve` and `/readyz` say loudly."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError, MalformedInputError
from ledger.append import Receipt
from ledger.envelope.canonical import format_time
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import (
    generate_key_pair,
    key_id,
    load_private_key,
    public_key_from_raw,
    raw_public_key,
)
from ledger.envelope.signing import build_envelope
from ledger.evidence.keystore import FileKeyStore
from ledger.log import note
from ledger.settings import (
    CONFIG_FILE,
    PRODUCTION,
    PRODUCTION_MIN_WITNESSES,
    PROFILES,
    STANDARD,
    ConfigurationError,
    LedgerConfig,
    Settings,
    key_path,
    keystore_location,
)
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


GENESIS_REQUEST = "genesis-request.json"


def init_data_dir(
    data_dir: Path,
    origin: str,
    settings: Settings,
    *,
    now: datetime,
    admin_public: bytes | None = None,
    profile: str = STANDARD,
) -> InitResult:
    """Create keys (mode 0600), the keystore (``settings.keystore_dir``, mode 0700; unset: the demo
    keystore in the data dir), config and tables; refuse to overwrite.

    With ``admin_public`` (production) the trust-root admin key was made elsewhere and its private
    half never comes here: the registry stays empty until the admin signs its genesis offline
    (:func:`genesis_envelopes`, from the request written to ``genesis-request.json``) and it is
    submitted. Without it (demo mode) an admin key is generated into the data dir and the genesis
    is signed at once.

    ``profile="production"`` refuses demo mode (an admin key or a keystore in the data dir) and
    records that a checkpoint is published only once ``PRODUCTION_MIN_WITNESSES`` witnesses in other
    trust domains cosigned it (docs/witness.md)."""
    if not ORIGIN_RE.fullmatch(origin):
        raise MalformedInputError(
            "origin must be a schema-less name like 'cambridgema.gov/evidence-ledger' (no spaces or '+')",
            code="BAD_ORIGIN",
        )
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigurationError(
            f"{data_dir} is already initialised: it is a ledger already; use it with --data-dir {data_dir}"
            " (or EVIDENCE_LEDGER_DATA_DIR), or give init another --data-dir to create a separate one"
        )
    if profile not in PROFILES:
        raise MalformedInputError(f"profile must be one of: {', '.join(PROFILES)}", code="BAD_ARGUMENT")
    if profile == PRODUCTION and admin_public is None:
        raise ConfigurationError(
            "--profile production never keeps the trust-root admin key on the server: generate it on an offline"
            " machine (`evidence-ledger keys new`) and give init its public key with --admin-public-key FILE"
            " (docs/keys.md)"
        )
    if profile == PRODUCTION and settings.keystore_dir is None:
        raise ConfigurationError(
            "--profile production keeps the keys of sealed records outside the data dir: give init"
            " --keystore-dir DIR (docs/privacy.md)"
        )
    settings = settings.model_copy(update={"data_dir": data_dir})
    keystore = keystore_location(settings)  # a keystore in the data dir is refused before anything is written
    if admin_public is not None:
        public_key_from_raw(admin_public)  # a usable Ed25519 key, before anything is written
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    admin = generate_key_pair(key_path(data_dir, "admin")) if admin_public is None else None
    log_key = generate_key_pair(key_path(data_dir, "log"))
    service = generate_key_pair(key_path(data_dir, "service"))
    FileKeyStore.create(keystore.path)
    root_public = raw_public_key(admin) if admin is not None else admin_public
    assert root_public is not None
    config = LedgerConfig(
        origin=origin, admin_key_id=key_id(root_public), log_key_name=origin, profile=profile,
        min_witnesses=PRODUCTION_MIN_WITNESSES if profile == PRODUCTION else 0,
    )
    config.save(data_dir)
    ledger = Ledger(settings, create_tables=True, clock=lambda: now)
    try:
        if admin is not None:
            for raw in genesis_envelopes(admin, origin, raw_public_key(service), now=now):
                (outcome,) = ledger.append([raw])
                if isinstance(outcome, LedgerError):
                    raise outcome
            ledger.checkpoint()
        else:
            request = {
                "origin": origin,
                "admin_key_id": config.admin_key_id,
                "service_public_key": base64.b64encode(raw_public_key(service)).decode("ascii"),
            }
            (data_dir / GENESIS_REQUEST).write_text(json.dumps(request, indent=2) + "\n", "utf-8")
    finally:
        ledger.close()
    return InitResult(origin, config.admin_key_id, log_verifier_key(config, log_key), data_dir)


def genesis_envelopes(
    admin: Ed25519PrivateKey, origin: str, service_public: bytes, *, now: datetime
) -> list[bytes]:
    """The registry's first two events, both signed by the admin key: its own self-signed
    registration (the trust root) and the registration of the server's service key."""
    root = registry_body(raw_public_key(admin), actor="admin", role="admin", authority=None, valid_from=now)
    first = build_envelope(
        origin=origin, case_id=REGISTRY_CASE_ID, event_type="KeyRegistered", body=root, key=admin,
        seq=1, prev=None, occurred_at=now,
    )
    svc = registry_body(service_public, actor=SERVICE_ACTOR, role="service", authority=None, valid_from=now)
    second = build_envelope(
        origin=origin, case_id=REGISTRY_CASE_ID, event_type="KeyRegistered", body=svc, key=admin,
        seq=2, prev=hashlib.sha256(first).hexdigest(), occurred_at=now,
    )
    return [first, second]


def genesis_from_request(admin: Ed25519PrivateKey, request: dict[str, Any], *, now: datetime) -> list[bytes]:
    """Sign the genesis a production `init` asked for (``genesis-request.json``), offline."""
    try:
        origin = str(request["origin"])
        wanted = str(request["admin_key_id"])
        service_public = base64.b64decode(str(request["service_public_key"]), validate=True)
    except (KeyError, TypeError, ValueError):
        raise MalformedInputError(
            "a genesis request has origin, admin_key_id and service_public_key (base64)", code="BAD_ARGUMENT"
        ) from None
    if key_id(admin) != wanted:
        raise MalformedInputError(
            f"this admin key is not the one the data dir was initialised with ({wanted[:16]}…)",
            code="BAD_KEY",
        )
    public_key_from_raw(service_public)
    return genesis_envelopes(admin, origin, service_public, now=now)


def registry_envelope(
    admin: Ed25519PrivateKey, *, origin: str, version: int, head: str | None, event_type: str,
    body: dict[str, Any], now: datetime,
) -> bytes:
    """A registry event signed by an admin key for the registry position after (version, head)."""
    return build_envelope(
        origin=origin, case_id=REGISTRY_CASE_ID, event_type=event_type, body=body, key=admin,
        seq=version + 1, prev=head, occurred_at=now,
    )


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
