"""Configuration from the environment (prefix ``EVIDENCE_LEDGER_``) and the data directory.

The data directory holds what ``init`` creates: ``ledger.json`` (origin, key ids), ``keys/`` (the log
signing key, the server's service key, the state key that MACs read-model rows and tokens; mode
0600 — and, only in demo mode, the trust-root admin key) and, by default, the SQLite database.
The keys of sealed personal data live in the keystore (``keystore_dir``), which must be outside the
data dir and the database's directory; only a demo `init` puts it in ``<data dir>/keystore`` and
every start says so (docs/privacy.md).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.errors import LedgerError, MalformedInputError

CONFIG_FILE = "ledger.json"
SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class ConfigurationError(LedgerError):
    """The service cannot run as configured (bad setting, missing data dir, unsafe durability)."""

    code = "CONFIGURATION"


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``EVIDENCE_LEDGER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="EVIDENCE_LEDGER_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="directory created by `init`")
    database_url: str | None = Field(
        default=None, description="postgresql://user:pass@host:port/db[?schema=S]; default SQLite in data dir"
    )
    authorities: tuple[str, ...] = ("middlesex_da", "massachusetts_ag")
    checkpoint_interval: float = Field(default=1.0, gt=0, description="seconds between checkpoints")
    tsa_interval: float = Field(
        default=60.0,
        gt=0,
        description="at most one RFC 3161 time-stamp request per TSA (tsa.json) per this many seconds, for the"
        " newest checkpoint (a bundle export also asks for its own checkpoint's)",
    )
    tsa_timeout: float = Field(
        default=5.0, gt=0, le=30, description="seconds per request to a time-stamping authority (tsa.json)"
    )
    postgres_pool_size: int = 8
    postgres_lock_timeout: int = 5
    max_json_body: int = 1024 * 1024
    max_clock_skew_seconds: int = 300
    public_statistics_bucket: int = Field(
        default=5,
        ge=2,
        description="GET /v1/public/statistics gives each count as the range of this width it falls in"
        " (0-4, 5-9, ... for 5): fewer than this many, none included, all read the same",
    )
    public_statistics_lag_months: int = Field(
        default=1,
        ge=0,
        le=24,
        description="months after the end of a capture month before its counts are shown; they describe"
        " each footage as it stood at that cutoff and never change afterwards",
    )
    public_statistics_since: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        description="first month (YYYY-MM) of the public statistics; default the month of the ledger's genesis",
    )
    keystore_dir: Path | None = Field(
        default=None,
        description="the keystore of sealed records' keys (outside the data dir); unset: the demo keystore "
        "<data dir>/keystore, if a demo `init` made one",
    )
    disclosure_window_seconds: int = Field(
        default=24 * 3600, gt=0, description="approvals and the disclosure must come this soon after a request"
    )
    retention_days: int = Field(
        default=90, ge=0, description="`retention run` shreds sealed data of cases closed longer than this"
    )
    receipt_max_delay: int = Field(
        default=300,
        gt=0,
        le=10 * 365 * 24 * 3600,
        description="seconds a signed receipt promises until a checkpoint covers the entry; must exceed"
        " checkpoint_interval",
    )

    tiles_dir: Path | None = Field(
        default=None,
        description="where the service publishes the case log as C2SP tlog-tiles after each checkpoint"
        " (served at /tiles/; docs/formats.md, Tiled log); default <data dir>/tiles",
    )

    @property
    def tiles_path(self) -> Path:
        return self.data_dir / "tiles" if self.tiles_dir is None else self.tiles_dir

    read_database_url: str | None = Field(
        default=None,
        description="postgresql://... of a streaming replica of the primary (PostgreSQL only) that serves the"
        " read endpoints, never older than a checkpoint the client or this server holds (docs/scaling-reads.md)",
    )
    read_fallback: Literal["primary", "unavailable"] = Field(
        default="primary",
        description="when the replica is behind what a read must reflect, or unreachable: serve it from the"
        " primary, or answer 503 REPLICA_BEHIND with Retry-After",
    )
    read_recheck_seconds: float = Field(
        default=5.0, gt=0, le=300, description="an unreachable replica is left alone this long before it is tried again"
    )
    read_connect_timeout: int = Field(
        default=2, ge=1, le=30, description="seconds to wait for a connection to the replica"
    )

    @model_validator(mode="after")
    def _replica_of_postgres(self) -> Settings:
        """A read replica is a PostgreSQL streaming replica of a PostgreSQL primary, in the same schema."""
        if not self.read_database_url:
            return self
        primary = database_target(self)
        if primary.kind != "postgres":
            raise ConfigurationError(
                "EVIDENCE_LEDGER_READ_DATABASE_URL is set but the ledger is on SQLite: read replicas need a"
                " PostgreSQL primary (EVIDENCE_LEDGER_DATABASE_URL=postgresql://...) and its streaming replica;"
                " unset EVIDENCE_LEDGER_READ_DATABASE_URL",
                code="READ_REPLICA_UNSUPPORTED",
            )
        replica = parse_database_url(self.read_database_url)
        if replica.kind != "postgres":
            raise ConfigurationError(
                "EVIDENCE_LEDGER_READ_DATABASE_URL must be a postgresql:// URL (a streaming replica of the primary)",
                code="READ_REPLICA_UNSUPPORTED",
            )
        if replica.schema != primary.schema:
            raise ConfigurationError(
                f"the read replica's schema ({replica.schema}) is not the primary's ({primary.schema}): a replica"
                " holds the primary's tables under the same names",
                code="READ_REPLICA_UNSUPPORTED",
            )
        return self

    @model_validator(mode="after")
    def _promise_keepable(self) -> Settings:
        """A receipt promises a checkpoint within ``receipt_max_delay``: the checkpointer must sign faster."""
        if self.receipt_max_delay <= self.checkpoint_interval:
            raise ConfigurationError(
                f"EVIDENCE_LEDGER_RECEIPT_MAX_DELAY ({self.receipt_max_delay} s) must exceed "
                f"EVIDENCE_LEDGER_CHECKPOINT_INTERVAL ({self.checkpoint_interval} s): a receipt would promise "
                "a checkpoint sooner than one is signed. Raise the delay or shorten the interval"
            )
        return self


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the ledger lives: a SQLite file or a PostgreSQL database (+schema)."""

    kind: str  # "sqlite" | "postgres"
    sqlite_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = ""
    user: str = ""
    password: str = ""
    schema: str = "public"

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:{self.sqlite_path}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname} (schema {self.schema})"


def database_target(settings: Settings) -> DatabaseTarget:
    url = settings.database_url
    if not url:
        return DatabaseTarget(kind="sqlite", sqlite_path=settings.data_dir / "ledger.sqlite3")
    return parse_database_url(url)


def parse_database_url(url: str) -> DatabaseTarget:
    parsed = urlparse(url)
    if parsed.scheme in ("sqlite", "file"):
        return DatabaseTarget(kind="sqlite", sqlite_path=Path(unquote(parsed.path)))
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError("database URL must start with postgresql:// or sqlite://")
    query = parse_qs(parsed.query)
    dbname = unquote(parsed.path.lstrip("/"))
    if not dbname:
        raise ConfigurationError("database URL names no database")
    schema = query.get("schema", ["public"])[0]
    if not SCHEMA_RE.fullmatch(schema):
        raise ConfigurationError("the schema in the database URL must be a plain lowercase name ([a-z_][a-z0-9_]*)")
    return DatabaseTarget(
        kind="postgres",
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        dbname=dbname,
        user=unquote(parsed.username or os.environ.get("USER", "postgres")),
        password=unquote(parsed.password or ""),
        schema=schema,
    )


def not_a_data_dir(data_dir: Path) -> str:
    """Why ``data_dir`` cannot be used, and what to check — never an invitation to create a second ledger
    where the user mistyped the path of the first."""
    where = "check --data-dir / EVIDENCE_LEDGER_DATA_DIR"
    new = "(`evidence-ledger init` creates a new, separate ledger)"
    if not Path(data_dir).exists():
        return f"the data dir {data_dir} does not exist: {where} {new}"
    if not Path(data_dir).is_dir():
        return f"the data dir {data_dir} is not a directory: {where}"
    return f"{data_dir} is not an initialised data dir (it has no {CONFIG_FILE}): {where} {new}"


STANDARD, PRODUCTION = "standard", "production"
PROFILES = (STANDARD, PRODUCTION)
#: cosignatures from witnesses in other trust domains a production checkpoint needs to be published
PRODUCTION_MIN_WITNESSES = 2


@dataclass(frozen=True)
class LedgerConfig:
    """What `init` wrote to ``ledger.json``. ``profile`` is ``standard`` (a checkpoint is published as
    soon as it is signed) or ``production`` (published only once ``min_witnesses`` witnesses in other
    trust domains cosigned it: docs/witness.md); a file without it is a standard ledger's."""

    origin: str
    admin_key_id: str
    log_key_name: str
    profile: str = STANDARD
    min_witnesses: int = 0

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigurationError(f"profile must be one of: {', '.join(PROFILES)}")
        if self.profile == PRODUCTION and self.min_witnesses < PRODUCTION_MIN_WITNESSES:
            raise ConfigurationError(
                f"a production ledger needs min_witnesses >= {PRODUCTION_MIN_WITNESSES} (docs/witness.md)"
            )

    @property
    def production(self) -> bool:
        return self.profile == PRODUCTION

    @staticmethod
    def load(data_dir: Path) -> LedgerConfig:
        path = data_dir / CONFIG_FILE
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(not_a_data_dir(data_dir)) from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {path}: {exc}") from None
        profile = data.get("profile", STANDARD)
        default_min = PRODUCTION_MIN_WITNESSES if profile == PRODUCTION else 0
        min_witnesses = data.get("min_witnesses", default_min)
        if isinstance(min_witnesses, bool) or not isinstance(min_witnesses, int):
            raise ConfigurationError(f"{path}: min_witnesses must be an integer")
        try:
            return LedgerConfig(
                origin=data["origin"], admin_key_id=data["admin_key_id"], log_key_name=data["log_key_name"],
                profile=profile, min_witnesses=min_witnesses,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}: {exc.message}") from None

    def save(self, data_dir: Path) -> None:
        payload: dict[str, object] = {
            "origin": self.origin,
            "admin_key_id": self.admin_key_id,
            "log_key_name": self.log_key_name,
            "profile": self.profile,
        }
        if self.production:
            payload["min_witnesses"] = self.min_witnesses
        (data_dir / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n", "utf-8")


_E = TypeVar("_E")


def load_endpoints(
    path: Path, keys: tuple[str, ...], make: Callable[[dict[str, Any]], _E], what: str
) -> list[_E]:
    """The endpoints a data-dir JSON file lists (``witnesses.json``, ``tsa.json``): a list of objects with
    exactly ``keys``, each made by ``make`` (which raises MalformedInputError for a bad value), no two
    with one name; none when the file does not exist. Anything else is a ConfigurationError naming it."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) and set(e) == set(keys) for e in data):
        shape = ", ".join(f'"{k}": ...' for k in keys)
        raise ConfigurationError(f"{path} must be a list of {{{shape}}} objects")
    try:
        endpoints = [make(e) for e in data]
    except MalformedInputError as exc:
        raise ConfigurationError(f"{path}: {exc.message}") from None
    if len({getattr(e, "name", None) for e in endpoints}) != len(endpoints):
        raise ConfigurationError(f"{path} lists two {what} with the same name")
    return endpoints


def key_path(data_dir: Path, name: str) -> Path:
    return data_dir / "keys" / f"{name}.pem"


def state_key_path(data_dir: Path) -> Path:
    """The key that MACs every row the service reads back (``ledger/integrity.py``)."""
    return data_dir / "keys" / "state.key"


DEMO_KEYSTORE = "keystore"


@dataclass(frozen=True)
class KeystoreLocation:
    path: Path
    in_data_dir: bool  # demo mode: the keystore is in the data dir


def keystore_location(settings: Settings) -> KeystoreLocation:
    """Where the sealed records' keys are. A configured keystore inside the data dir or the SQLite
    database's directory is refused (``KEYSTORE_IN_DATA_DIR``): a copy of those would then unseal
    everything. Unset, it is the demo keystore in the data dir."""
    if settings.keystore_dir is None:
        return KeystoreLocation(settings.data_dir / DEMO_KEYSTORE, True)
    path = settings.keystore_dir
    target = database_target(settings)
    near = [settings.data_dir] + ([target.sqlite_path.parent] if target.sqlite_path is not None else [])
    for directory in near:
        resolved, base = path.resolve(), directory.resolve()
        if resolved == base or base in resolved.parents or resolved in base.parents:
            raise ConfigurationError(
                f"the keystore {path} must not be in (or contain) the data dir or the database's directory "
                f"{directory}: a copy of those would unseal every record. Unset EVIDENCE_LEDGER_KEYSTORE_DIR "
                "only for a demo (docs/privacy.md)",
                code="KEYSTORE_IN_DATA_DIR",
            )
    return KeystoreLocation(path, False)
