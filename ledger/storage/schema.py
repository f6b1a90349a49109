"""The ledger's own tables and their versions: the current definitions, and the migrations that
bring a database made by an earlier release up to them.

A new database gets :data:`TABLES` at :data:`SCHEMA_VERSION`. An older one gets each migration of
:data:`MIGRATIONS` above its version, in order, in one transaction (``Database.migrate``, run by
``init``, ``db migrate`` and ``db provision`` only; the service creates nothing at run time); the
data steps a migration names (rebuilding the read models from the signed events, sealing the
existing API tokens) then run in ``ledger.store.Ledger.migrate``. ``tests/ledger/storage/test_schema_upgrade.py``
migrates a database made with the previous release's exact table definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

# The append-only tables: the service only ever INSERTs into them (PostgreSQL triggers enforce it
# for every role, see `db provision`). Everything else is a read model (rebuilt by `replay`) or
# operational state, each row of which carries a MAC (``ledger/storage/integrity.py``).
# The access log (docs/access-log.md): its entries, tree nodes and checkpoints, append-only too.
ACCESS_LOG_TABLES = ("access_entries", "access_nodes", "access_checkpoints")
APPEND_ONLY_TABLES = (
    "log_entries", "log_nodes", "log_checkpoints", "log_cosignatures", "api_tokens", "api_token_revocations",
    *ACCESS_LOG_TABLES, "log_timestamps",
)
READ_MODEL_TABLES = (
    "case_state", "case_timeline", "case_custody", "public_releases", "projection_tracking", "log_head",
)

# A footage item's chain of custody, one row per link (``step`` from 1), written with the event that
# adds the link; the case state only counts them. ``entry`` is the link as served (JSON).
CASE_CUSTODY_DDL = """CREATE TABLE IF NOT EXISTS case_custody (
        case_id TEXT NOT NULL, footage_id TEXT NOT NULL, step {bigint} NOT NULL, seq {bigint} NOT NULL,
        leaf_index {bigint} NOT NULL, entry TEXT NOT NULL, mac TEXT NOT NULL,
        PRIMARY KEY (case_id, footage_id, step))"""

CASE_NUMBER_INDEX = "CREATE INDEX IF NOT EXISTS case_state_number ON case_state (case_number, case_id)"

# Every read of a case, timeline, bundle or evidence file, and every refusal of one: its own Merkle
# log. ``entry`` is the exact leaf (canonical JSON, ``ledger/log/access_entry.py``); the other columns
# repeat what it says, for the auditors' filters (the audit checks that they agree).
ACCESS_LOG_DDL = (
    """CREATE TABLE IF NOT EXISTS access_entries (
        entry_index {bigint} PRIMARY KEY CHECK (entry_index >= 0),
        case_id TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        entry {blob} NOT NULL,
        recorded_at TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS access_entries_case ON access_entries (case_id, entry_index)""",
    """CREATE INDEX IF NOT EXISTS access_entries_actor ON access_entries (actor, entry_index)""",
    """CREATE TABLE IF NOT EXISTS access_nodes (
        level INTEGER NOT NULL, idx {bigint} NOT NULL, hash {blob} NOT NULL,
        PRIMARY KEY (level, idx))""",
    """CREATE TABLE IF NOT EXISTS access_checkpoints (
        size {bigint} PRIMARY KEY, root {blob} NOT NULL, note TEXT NOT NULL, signed_at TEXT NOT NULL)""",
)

# RFC 3161 time-stamp tokens over checkpoints (``ledger/log/timestamping.py``): the TSA's DER reply as
# received, one per (checkpoint size, TSA name). Self-authenticating (signed by the TSA over the
# checkpoint's body), so no row MAC: every reader verifies the token, and the audit checks every row.
LOG_TIMESTAMPS_DDL = """CREATE TABLE IF NOT EXISTS log_timestamps (
        size {bigint} NOT NULL, tsa TEXT NOT NULL, token {blob} NOT NULL, received_at TEXT NOT NULL,
        PRIMARY KEY (size, tsa))"""

# One definition list for both dialects; {blob} and {bigint} are substituted per backend.
TABLES = [
    """CREATE TABLE IF NOT EXISTS ledger_meta (
        key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS log_entries (
        leaf_index {bigint} PRIMARY KEY CHECK (leaf_index >= 0),
        event_id TEXT NOT NULL UNIQUE,
        case_id TEXT NOT NULL,
        seq {bigint} NOT NULL CHECK (seq >= 1),
        event_type TEXT NOT NULL,
        envelope_sha256 TEXT NOT NULL,
        leaf {blob} NOT NULL,
        integrated_at TEXT NOT NULL,
        UNIQUE (case_id, seq))""",
    """CREATE TABLE IF NOT EXISTS log_nodes (
        level INTEGER NOT NULL, idx {bigint} NOT NULL, hash {blob} NOT NULL,
        PRIMARY KEY (level, idx))""",
    """CREATE TABLE IF NOT EXISTS log_checkpoints (
        size {bigint} PRIMARY KEY, root {blob} NOT NULL, note TEXT NOT NULL, signed_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS log_cosignatures (
        size {bigint} NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, received_at TEXT NOT NULL,
        PRIMARY KEY (size, witness))""",
    """CREATE TABLE IF NOT EXISTS case_state (
        case_id TEXT PRIMARY KEY, version {bigint} NOT NULL, head_sha256 TEXT NOT NULL,
        status TEXT NOT NULL, category TEXT NOT NULL, updated_leaf {bigint} NOT NULL,
        state TEXT NOT NULL, view TEXT NOT NULL, public_count {bigint} NOT NULL DEFAULT 0,
        mac TEXT NOT NULL DEFAULT '', case_number TEXT)""",
    """CREATE INDEX IF NOT EXISTS case_state_status ON case_state (status, category, case_id)""",
    # The case number's lookup key only (not unique: a ledger from before the rule may hold a number
    # twice). Never believed alone: a row found by it is checked, and its MAC'd view must carry the
    # number (``ledger.storage.read_models.case_number_holders``).
    CASE_NUMBER_INDEX,
    """CREATE TABLE IF NOT EXISTS case_timeline (
        case_id TEXT NOT NULL, seq {bigint} NOT NULL, leaf_index {bigint} NOT NULL, entry TEXT NOT NULL,
        mac TEXT NOT NULL DEFAULT '', PRIMARY KEY (case_id, seq))""",
    CASE_CUSTODY_DDL,
    """CREATE TABLE IF NOT EXISTS public_releases (
        case_id TEXT NOT NULL, footage_id TEXT NOT NULL, status TEXT NOT NULL, entry TEXT NOT NULL,
        version {bigint} NOT NULL DEFAULT 0, mac TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (case_id, footage_id))""",
    """CREATE TABLE IF NOT EXISTS projection_tracking (
        name TEXT PRIMARY KEY, position {bigint} NOT NULL, mac TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), size {bigint} NOT NULL, root {blob} NOT NULL,
        integrated_at TEXT NOT NULL, cases {bigint} NOT NULL, public_releases {bigint} NOT NULL,
        read_models TEXT NOT NULL, mac TEXT NOT NULL)""",
    # Sealed personal data: ciphertext, nonce and ids only; the record's key is in the keystore
    # (ledger/evidence/keystore.py). case_id binds the record to the one case that names it.
    """CREATE TABLE IF NOT EXISTS sealed_records (
        sealed_ref TEXT PRIMARY KEY, nonce {blob} NOT NULL, ciphertext {blob} NOT NULL,
        created_at TEXT NOT NULL, case_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
        token_id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, actor TEXT NOT NULL,
        role TEXT NOT NULL, authority TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        mac TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS api_token_revocations (
        token_id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL, mac TEXT NOT NULL)""",
    *ACCESS_LOG_DDL,
    LOG_TIMESTAMPS_DDL,
]


@dataclass(frozen=True)
class Migration:
    """One step up: the schema version it produces, its statements, and the data steps it needs."""

    version: int
    summary: str
    statements: tuple[str, ...]
    rebuild_read_models: bool = False
    seal_tokens: bool = False
    move_sealed_keys: bool = False


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "row MACs on the read models, the log head, API tokens sealed with their revocations apart",
        (
            "ALTER TABLE case_state ADD COLUMN public_count {bigint} NOT NULL DEFAULT 0",
            "ALTER TABLE case_state ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE case_timeline ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE public_releases ADD COLUMN version {bigint} NOT NULL DEFAULT 0",
            "ALTER TABLE public_releases ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE projection_tracking ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
        ),
        rebuild_read_models=True,
        seal_tokens=True,
    ),
    Migration(
        3,
        "the access log (entries, tree nodes, checkpoints; append-only); sealed records' keys move out of"
        " the database into the keystore; a record belongs to one case",
        (
            *ACCESS_LOG_DDL,
            # the wrapped keys wait here until the data step has put each into the keystore
            """CREATE TABLE sealed_keys_to_move (
                sealed_ref TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped_key {blob} NOT NULL)""",
            "INSERT INTO sealed_keys_to_move (sealed_ref, kek_id, wrapped_key)"
            " SELECT sealed_ref, kek_id, wrapped_key FROM sealed_records",
            "ALTER TABLE sealed_records DROP COLUMN wrapped_key",
            "ALTER TABLE sealed_records DROP COLUMN kek_id",
            "ALTER TABLE sealed_records ADD COLUMN case_id TEXT",
        ),
        rebuild_read_models=True,
        move_sealed_keys=True,
    ),
    Migration(
        4,
        "a footage item's chain of custody leaves the case state for rows of its own (case_custody), so an"
        " append costs the same however long the chain; the read models are rebuilt to fill it",
        (CASE_CUSTODY_DDL,),
        rebuild_read_models=True,
    ),
    Migration(
        5,
        "a case's number becomes a lookup column of its case_state row (indexed), so a CaseOpened with a"
        " number another case already has is refused (DUPLICATE_CASE_NUMBER) and cases can be listed by"
        " number; the read models are rebuilt to fill it",
        ("ALTER TABLE case_state ADD COLUMN case_number TEXT", CASE_NUMBER_INDEX),
        rebuild_read_models=True,
    ),
    Migration(
        6,
        "RFC 3161 time-stamp tokens over checkpoints (log_timestamps, append-only), obtained from the TSAs of"
        " tsa.json",
        (LOG_TIMESTAMPS_DDL,),
    ),
)
FIRST_VERSION = 1
SCHEMA_VERSION = MIGRATIONS[-1].version if MIGRATIONS else FIRST_VERSION


def dialect(statement: str, *, postgres: bool) -> str:
    blob, bigint = ("BYTEA", "BIGINT") if postgres else ("BLOB", "INTEGER")
    return statement.format(blob=blob, bigint=bigint)


def pending(found: int | None) -> list[Migration]:
    """The migrations a database at version ``found`` needs (none for a new one)."""
    return [] if found is None else [m for m in MIGRATIONS if m.version > found]
