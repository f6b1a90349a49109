"""Tamper, then act: every database edit an insider could make is followed by the action it would
enable, which must be refused with its exact code while the log does not grow. Three settings:
SQLite; PostgreSQL; and PostgreSQL with the service and the insider both working as the role `db
provision` made (there an edit of an append-only table is itself refused by the database, which is
the outcome). Then ``replay`` repairs the read models from the signed events and the true rule
applies again.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql

from domain.errors import LedgerError
from ledger.audit.run import run_audit
from ledger.audit.source import read_database
from ledger.bootstrap import init_data_dir, registry_body
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import key_id, raw_public_key
from ledger.log.leaf import leaf_bytes
from ledger.replay import rebuild
from ledger.settings import Settings
from ledger.storage.integrity import StateTampered
from ledger.storage.read_models import CUSTODY_COLUMNS
from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.audit import Raw, audit, options
from tests.support.cases import (
    Actors,
    case_opened,
    derivative_created,
    footage_captured,
    footage_released,
    hold_placed,
    new_case_id,
)
from tests.support.ledgers import ORIGIN, FakeClock
from tests.support.postgres import drop_roles, init_as_owner, provisioned_url

RELEASE = footage_released(derivative=False)


@dataclass
class World:
    ledger: Ledger
    actors: Actors
    raw: Raw
    case_id: str

    @property
    def as_app_role(self) -> bool:
        return self.ledger.settings.database_url is not None and "el_app_" in self.ledger.settings.database_url

    def append_only_edit(self, sql: str, params: tuple[Any, ...] = ()) -> bool:
        """Edit an append-only table: done (True), or — as the provisioned role — refused by the
        database (False, after checking that it was refused and changed nothing)."""
        if not self.as_app_role:
            self.raw.run(sql, params)
            return True
        with pytest.raises(psycopg.Error) as refused:
            self.raw.run(sql, params)
        assert isinstance(refused.value, (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException))
        return False

    def size(self) -> int:
        return self.ledger.log_size()

    def rows(self, table: str, case_id: str) -> list[tuple[Any, ...]]:
        return self.raw.run(f"SELECT * FROM {table} WHERE case_id = ?", (case_id,))

    def put_rows(self, table: str, case_id: str, rows: list[tuple[Any, ...]]) -> None:
        """Replace a case's rows in a read-model table with ``rows`` (a snapshot taken earlier)."""
        self.raw.run(f"DELETE FROM {table} WHERE case_id = ?", (case_id,))
        for row in rows:
            marks = ", ".join("?" * len(row))
            self.raw.run(f"INSERT INTO {table} VALUES ({marks})", row)

    def edit_state(self, case_id: str, change: Callable[[dict[str, Any]], None], **columns: Any) -> None:
        """Rewrite a case's decision state (and other columns) in place, as a DBA would with SQL."""
        (row,) = self.raw.run("SELECT state FROM case_state WHERE case_id = ?", (case_id,))
        state = json.loads(row[0])
        change(state)
        sets = ", ".join(["state = ?", *(f"{c} = ?" for c in columns)])
        self.raw.run(
            f"UPDATE case_state SET {sets} WHERE case_id = ?",
            (json.dumps(state, sort_keys=True, separators=(",", ":")), *columns.values(), case_id),
        )

    def refused(self, who: str, case_id: str, event_type: str, body: dict[str, Any], **kw: Any) -> LedgerError:
        """The append is refused (returned or raised) and nothing was written."""
        before = self.size()
        try:
            outcome = self.actors.append(who, case_id, event_type, body, **kw)
        except LedgerError as exc:
            outcome = exc
        assert isinstance(outcome, LedgerError), f"{event_type} was accepted"
        assert self.size() == before, "the log grew"
        return outcome


MODES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres_app_role", marks=pytest.mark.postgres),
]


@pytest.fixture(params=MODES)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger on SQLite, on PostgreSQL, or on PostgreSQL as the role `db provision` made."""
    clock = FakeClock()
    data_dir = tmp_path / "data"
    if request.param == "postgres_app_role":
        database = request.getfixturevalue("pg_database")
        with _provisioned(database, tmp_path) as (data_dir, clock, app_url), Ledger(
            Settings(data_dir=data_dir, database_url=app_url), clock=clock
        ) as opened:
            yield opened
        return
    url = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    settings = Settings(data_dir=data_dir, database_url=url)
    init_data_dir(data_dir, ORIGIN, settings, now=clock())
    with Ledger(settings, clock=clock) as opened:
        yield opened


@contextmanager
def _provisioned(database: str, tmp_path: Path) -> Iterator[tuple[Path, FakeClock, str]]:
    """An owner role that runs `init` and `db provision`; yields the application role's URL."""
    token = secrets.token_hex(5)
    owner, app_role = f"el_owner_{token}", f"el_app_{token}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(database.rsplit("/", 1)[1]), sql.Identifier(owner)
            )
        )
    try:
        data_dir, clock, owner_url = init_as_owner(database, owner, tmp_path)
        yield data_dir, clock, provisioned_url(owner_url, data_dir, app_role)
    finally:
        drop_roles(database, [app_role, owner])


@pytest.fixture
def world(ledger: Ledger) -> Iterator[World]:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
    yield World(ledger, actors, Raw(ledger), case_id)


def tampered(error: LedgerError, **refs: str) -> None:
    assert isinstance(error, StateTampered) and error.code == "STATE_TAMPERED", error
    assert error.refs == refs, error.refs  # names the stream, nothing of its contents


def repaired(world: World) -> None:
    """`replay` rebuilds the read models from the signed events; the service trusts them again."""
    rebuild(world.ledger.db, world.ledger.appender, from_zero=True)
    world.ledger.appender._cache.clear()  # a fresh process: nothing decided in memory


# --- case state ---------------------------------------------------------------------------------


def test_a_hold_lifted_in_the_read_model_does_not_allow_a_release(world: World) -> None:
    w = world
    w.actors.ok("investigator", w.case_id, "InvestigationHoldPlaced", hold_placed())
    w.ledger.appender._cache.clear()  # another process, or a restart: the row is what it reads

    def lift(state: dict[str, Any]) -> None:
        state["holds"][0]["active"] = False

    w.edit_state(w.case_id, lift)
    tampered(w.refused("supervisor", w.case_id, "FootageReleased", RELEASE), case_id=w.case_id)
    with pytest.raises(StateTampered):
        w.ledger.case_view(w.case_id)  # reads of the tampered case say so too
    assert w.ledger.public_releases() == []
    repaired(w)
    assert w.refused("supervisor", w.case_id, "FootageReleased", RELEASE).code == "RELEASE_UNDER_HOLD"


def test_a_hold_lifted_while_the_service_runs_is_refused_on_read_and_never_used(world: World) -> None:
    """The running process decides from its own memory, never from the edited row; reads check the row."""
    w = world
    w.actors.ok("investigator", w.case_id, "InvestigationHoldPlaced", hold_placed())
    w.edit_state(w.case_id, lambda s: s["holds"][0].update(active=False))
    assert w.refused("supervisor", w.case_id, "FootageReleased", RELEASE).code == "RELEASE_UNDER_HOLD"
    with pytest.raises(StateTampered):
        w.ledger.case_view(w.case_id)


def test_read_model_rows_restored_to_before_a_hold_do_not_allow_a_release(world: World) -> None:
    w = world
    before = {t: w.rows(t, w.case_id) for t in ("case_state", "case_timeline", "case_custody", "public_releases")}
    w.actors.ok("investigator", w.case_id, "InvestigationHoldPlaced", hold_placed())
    for table, rows in before.items():
        w.put_rows(table, w.case_id, rows)
    w.ledger.appender._cache.clear()
    # Signed for the true next position: refused because the state row is stale, not by accident.
    tampered(w.refused("supervisor", w.case_id, "FootageReleased", RELEASE), case_id=w.case_id)
    with pytest.raises(StateTampered):
        w.ledger.timeline(w.case_id)
    repaired(w)
    assert w.refused("supervisor", w.case_id, "FootageReleased", RELEASE).code == "RELEASE_UNDER_HOLD"


def test_a_closed_case_reopened_in_the_read_model_stays_closed(world: World) -> None:
    w = world
    w.actors.ok("supervisor", w.case_id, "CaseClosed", {"disposition": "referred"})
    w.ledger.appender._cache.clear()
    w.edit_state(w.case_id, lambda s: s.update(status="open", closed_at=None, disposition=None), status="open")
    error = w.refused("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    tampered(error, case_id=w.case_id)
    repaired(w)
    assert w.refused("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2")).code == "CASE_CLOSED"


def test_a_deleted_case_row_is_not_a_new_case(world: World) -> None:
    w = world
    w.raw.run("DELETE FROM case_state WHERE case_id = ?", (w.case_id,))
    w.ledger.appender._cache.clear()
    tampered(w.refused("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2")), case_id=w.case_id)


def test_one_tampered_case_does_not_fail_the_others_in_its_batch(world: World) -> None:
    w = world
    w.edit_state(w.case_id, lambda s: s.update(summary="edited"))
    w.ledger.appender._cache.clear()
    other = new_case_id()
    outcomes = w.ledger.append(
        [
            w.actors.envelope("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2")),
            w.actors.envelope("investigator", other, "CaseOpened", case_opened("CPD-2026-0002")),
        ]
    )
    assert isinstance(outcomes[0], StateTampered) and not isinstance(outcomes[1], LedgerError)


# --- a footage item's chain of custody -------------------------------------------------------------


def _transferred(w: World, count: int) -> None:
    """``count`` transfers of ftg-1 after its capture: a chain of ``count + 1`` links."""
    for i in range(count):
        w.actors.ok("investigator", w.case_id, "CustodyTransferred", {
            "footage_id": "ftg-1", "from_custodian": "CPD Evidence Unit" if i == 0 else f"Unit {i - 1}",
            "to_custodian": f"Unit {i}", "purpose": "review",
        })


def _custody_drift(w: World) -> list[str]:
    """What the audit names for the case (one PROJECTION_DRIFT for it, nothing else); the audit
    case by case on two workers must name the same."""
    report = audit(w.ledger)
    assert [(f.code, f.case_id) for f in report.findings] == [("PROJECTION_DRIFT", w.case_id)], report.findings
    return list(report.findings[0].evidence["differences"])


CUSTODY_EDITS = {
    # a DBA rewrites who had the footage (the row's MAC no longer checks)
    "edited": (("UPDATE case_custody SET entry = REPLACE(entry, 'Unit 1', 'Unit 9') WHERE case_id = ? AND step = 3",),
               "case_custody footage ftg-1 step 3 differs"),
    # a link removed from the middle of the chain, or its newest link
    "deleted": (("DELETE FROM case_custody WHERE case_id = ? AND step = 2",), "case_custody footage ftg-1 step 2 missing"),
    "last deleted": (("DELETE FROM case_custody WHERE case_id = ? AND step = 4",),
                     "case_custody footage ftg-1 step 4 missing"),
    # two links swapped: each row is a real one, under the wrong number
    "renumbered": (tuple(f"UPDATE case_custody SET step = {new} WHERE case_id = ? AND step = {old}"
                         for old, new in ((3, 99), (4, 3), (99, 4))),
                   "case_custody footage ftg-1 step 3 differs"),
}


@pytest.mark.parametrize("edit", CUSTODY_EDITS)
def test_an_edited_or_deleted_custody_link_is_refused_on_read_and_named_by_the_audit(world: World, edit: str) -> None:
    w = world
    _transferred(w, 3)
    assert [link["to_custodian"] for link in w.ledger.custody(w.case_id, "ftg-1")] == [
        "CPD Evidence Unit", "Unit 0", "Unit 1", "Unit 2"
    ]
    statements, difference = CUSTODY_EDITS[edit]
    for statement in statements:
        w.raw.run(statement, (w.case_id,))
    with pytest.raises(StateTampered) as refused:
        w.ledger.custody(w.case_id, "ftg-1")
    tampered(refused.value, case_id=w.case_id)
    with pytest.raises(StateTampered):  # a page that starts at the edit says so too
        w.ledger.custody(w.case_id, "ftg-1", after=1, limit=3)
    assert difference in _custody_drift(w)
    # decisions never read the chain: the custodian is the signed state's
    w.actors.ok("investigator", w.case_id, "CustodyTransferred", {
        "footage_id": "ftg-1", "from_custodian": "Unit 2", "to_custodian": "Unit 3", "purpose": "review"})
    repaired(w)
    assert [link["step"] for link in w.ledger.custody(w.case_id, "ftg-1")] == [1, 2, 3, 4, 5]
    assert audit_clean(w)


def test_a_custody_link_copied_from_another_footage_or_case_is_refused(world: World) -> None:
    w = world
    w.actors.ok("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    _transferred(w, 1)
    # ftg-2's capture relabelled as ftg-1's second link: a real row, MAC'd for another place
    w.raw.run("DELETE FROM case_custody WHERE case_id = ? AND footage_id = 'ftg-1' AND step = 2", (w.case_id,))
    w.raw.run("UPDATE case_custody SET footage_id = 'ftg-1', step = 2 WHERE case_id = ? AND footage_id = 'ftg-2'",
              (w.case_id,))
    with pytest.raises(StateTampered):
        w.ledger.custody(w.case_id, "ftg-1")
    with pytest.raises(StateTampered):
        w.ledger.custody(w.case_id, "ftg-2")  # its chain lost its only link


def test_custody_links_beyond_the_signed_state_are_never_served(world: World) -> None:
    """A link planted after the chain's end (a copy of a real row, renumbered) is not read: the chain's
    length is the checked state's."""
    w = world
    _transferred(w, 1)
    (row,) = w.raw.run(f"SELECT {CUSTODY_COLUMNS} FROM case_custody WHERE case_id = ? AND step = 2", (w.case_id,))
    w.raw.run("INSERT INTO case_custody VALUES (?, ?, ?, ?, ?, ?, ?)", (*row[:2], 3, *row[3:]))
    assert [link["step"] for link in w.ledger.custody(w.case_id, "ftg-1")] == [1, 2]
    assert "case_custody footage ftg-1 step 3 without event" in _custody_drift(w)


def audit_clean(w: World) -> bool:
    report = run_audit(read_database(w.ledger.db, mac=w.ledger.mac), options(w.ledger))
    return report.findings == []


# --- the key registry ---------------------------------------------------------------------------


def _planted(world: World, rogue: Ed25519PrivateKey, *, role: str = "admin") -> None:
    """Add a key to the registry's read-model row as a DBA would (no signed KeyRegistered)."""
    registered = {
        "key_id": key_id(rogue),
        "public_key_b64": base64.b64encode(raw_public_key(rogue)).decode("ascii"),
        "actor": "Det. A. Rivera",
        "role": role,
        "authority": None,
        "valid_from": "2000-01-01T00:00:00Z",
        "registered_at": "2000-01-01T00:00:00Z",
        "registered_seq": 1,
        "revoked": False,
        "revoked_at": None,
        "revoked_seq": None,
        "revocation_reason": None,
        "compromised_since": None,
    }
    world.edit_state(REGISTRY_CASE_ID, lambda s: s["keys"].append(registered))


def test_a_key_planted_in_the_registry_read_model_signs_nothing(world: World) -> None:
    w = world
    rogue = Ed25519PrivateKey.generate()
    _planted(w, rogue, role="investigator")
    w.ledger.appender._registry = None  # a restart
    w.actors.keys["rogue"] = rogue
    tampered(w.refused("rogue", w.case_id, "FootageCaptured", footage_captured("ftg-2")), stream="registry")
    with pytest.raises(StateTampered):
        w.ledger.registry_state()
    repaired(w)
    assert w.refused("rogue", w.case_id, "FootageCaptured", footage_captured("ftg-2")).code == "UNKNOWN_KEY"


def test_a_planted_admin_key_registers_nothing(world: World) -> None:
    w = world
    rogue = Ed25519PrivateKey.generate()
    _planted(w, rogue)
    w.ledger.appender._registry = None
    w.actors.keys["rogue"] = rogue
    body = registry_body(
        raw_public_key(Ed25519PrivateKey.generate()), actor="Mallory", role="supervisor", authority=None,
        valid_from=w.ledger.clock(),
    )
    tampered(w.refused("rogue", REGISTRY_CASE_ID, "KeyRegistered", body), stream="registry")


def test_registry_rows_restored_to_before_a_revocation_do_not_revive_the_key(world: World) -> None:
    w = world
    before = w.rows("case_state", REGISTRY_CASE_ID)
    w.ledger.sign_and_append(
        _demo_admin(w.ledger), REGISTRY_CASE_ID, "KeyRevoked", {"key_id": w.actors.key_id("investigator"), "reason": "left"}
    )
    w.put_rows("case_state", REGISTRY_CASE_ID, before)
    w.ledger.appender._registry = None
    error = w.refused("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    tampered(error, stream="registry")
    repaired(w)
    assert w.refused("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2")).code == "REVOKED_KEY"


def _demo_admin(ledger: Ledger) -> Ed25519PrivateKey:
    from ledger.envelope.keys import load_private_key
    from ledger.settings import key_path

    return load_private_key(key_path(ledger.data_dir, "admin"))


# --- the log ------------------------------------------------------------------------------------


def _fresh_process(w: World) -> None:
    w.ledger.appender._tree = None
    w.ledger.appender._registry = None
    w.ledger.appender._cache.clear()


def test_a_moved_frontier_node_is_refused(world: World) -> None:
    w = world
    from ledger.log import merkle

    level, index = merkle.frontier_coords(w.size())[-1]
    if not w.append_only_edit("UPDATE log_nodes SET hash = ? WHERE level = ? AND idx = ?", (b"\x07" * 32, level, index)):
        return
    _fresh_process(w)
    tampered(w.refused("investigator", new_case_id(), "CaseOpened", case_opened()), stream="log")
    with pytest.raises(StateTampered):
        w.ledger.checkpoint()  # never signs a root it did not compute


def test_a_forged_log_entry_moving_the_position_is_refused(world: World) -> None:
    w = world
    size = w.size()
    (row,) = w.raw.run(
        "SELECT event_id, case_id, seq, event_type, envelope_sha256, leaf, integrated_at FROM log_entries"
        " WHERE leaf_index = ?",
        (size - 1,),
    )
    w.raw.run(
        "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
        " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (size, "forged-" + str(row[0])[7:], row[1], int(row[2]) + 1, row[3], row[4], w.raw.blob(row[5]), row[6]),
    )
    _fresh_process(w)
    before = int(w.raw.run("SELECT COUNT(*) FROM log_entries")[0][0])
    with pytest.raises(StateTampered) as refused:
        w.actors.append("investigator", new_case_id(), "CaseOpened", case_opened())
    tampered(refused.value, stream="log")
    assert int(w.raw.run("SELECT COUNT(*) FROM log_entries")[0][0]) == before


@pytest.mark.parametrize("column", ["size", "integrated_at"])
def test_an_edited_log_head_is_refused(world: World, column: str) -> None:
    w = world
    value: Any = 1 if column == "size" else "2100-01-01T00:00:00.000000Z"  # time would never go back
    w.raw.run(f"UPDATE log_head SET {column} = ?", (value,))
    _fresh_process(w)
    tampered(w.refused("investigator", new_case_id(), "CaseOpened", case_opened()), stream="log")


def test_a_forged_earlier_receipt_does_not_swallow_an_envelope(world: World) -> None:
    """A log row naming the new envelope's event id would make it a 'duplicate' never stored."""
    w = world
    case_id = new_case_id()
    raw_envelope = w.actors.envelope("investigator", case_id, "CaseOpened", case_opened())
    event_id = json.loads(base64.b64decode(json.loads(raw_envelope)["payload"]))["event_id"]
    last = w.size() - 1
    if not w.append_only_edit("UPDATE log_entries SET event_id = ? WHERE leaf_index = ?", (event_id, last)):
        return
    (outcome,) = w.ledger.append([raw_envelope])
    tampered(outcome, stream="log")  # that envelope only: its batch-mates are unaffected
    assert w.ledger.case_head(case_id) == (0, None)


def test_a_planted_log_row_never_makes_an_envelope_already_stored(world: World) -> None:
    """An insert-only insider plants an event row and a log row for an envelope it has seen (a
    signed hold on its way in): the hold must not get a 'duplicate' receipt while never logged."""
    w = world
    raw_envelope = w.actors.envelope("investigator", w.case_id, "InvestigationHoldPlaced", hold_placed())
    statement = json.loads(base64.b64decode(json.loads(raw_envelope)["payload"]))
    digest = __import__("hashlib").sha256(raw_envelope).hexdigest()
    bogus = new_case_id()
    w.raw.run(
        f"INSERT INTO {w.raw.events} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        (w.raw.key(bogus), 1, "x", raw_envelope),
    )
    size = w.size()
    for index in (-1, size + 1000):  # a negative index (refused by the table itself), or far ahead
        try:
            w.raw.run(
                "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
                " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (index, statement["event_id"], bogus, 1, "x", digest,
                 leaf_bytes(digest, max(index, 0), "2026-02-05T17:00:00Z"), "2026-02-05T17:00:00Z"),
            )
        except (psycopg.Error, __import__("sqlite3").Error):
            continue
        break
    before = w.ledger.case_head(w.case_id)
    try:
        (outcome,) = w.ledger.append([raw_envelope])
    except StateTampered as exc:
        outcome = exc
    tampered(outcome, stream="log")
    assert w.ledger.case_head(w.case_id) == before


def test_a_state_that_failed_to_commit_is_never_decided_from(world: World) -> None:
    """Worker A decides an event whose commit fails; worker B commits another event at that seq (a
    hold). A must decide from B's committed state, not from its own lost one."""
    from contextlib import contextmanager as _cm

    from ledger.storage.sql import StorageError

    w = world
    a, b = w.ledger, Ledger(w.ledger.settings, clock=w.ledger.clock)
    try:
        real = a.db.write

        @_cm
        def failing() -> Iterator[Any]:
            with real() as tx:
                yield tx
                raise StorageError("the commit failed")

        a.db.write = failing  # type: ignore[method-assign]
        with pytest.raises(StorageError):
            w.actors.append("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
        a.db.write = real  # type: ignore[method-assign]
        w.actors.ledger = b
        w.actors.ok("investigator", w.case_id, "InvestigationHoldPlaced", hold_placed())
        w.actors.ledger = a
        assert w.refused("supervisor", w.case_id, "FootageReleased", RELEASE).code == "RELEASE_UNDER_HOLD"
    finally:
        b.close()


def test_a_forged_or_garbage_checkpoint_row_is_refused_not_served(world: World) -> None:
    w = world
    real = w.ledger.checkpoint()
    assert real is not None
    for size, text in ((10**12, real.note.decode()), (10**12 + 1, "not a signed note")):
        w.raw.run(
            "INSERT INTO log_checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)",
            (size, b"\x00" * 32, text, real.signed_at),
        )
        with pytest.raises(StateTampered) as refused:
            w.ledger.latest_checkpoint()
        tampered(refused.value, stream="log")
        with pytest.raises(StateTampered):
            w.ledger.checkpoint()  # never "already covered" by a row it cannot trust
        if not w.append_only_edit("DELETE FROM log_checkpoints WHERE size = ?", (size,)):
            break
    w.ledger._rollback = None  # the next write re-checks at once
    if w.as_app_role:
        with pytest.raises(StateTampered):
            w.actors.append("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))


def test_a_forged_cosignature_line_is_left_out_and_a_real_one_kept(world: World) -> None:
    from ledger.log import note
    from ledger.log.witnessing import configure_witness

    w = world
    witness = Ed25519PrivateKey.generate()
    vkey = note.make_verifier_key("witness.example", witness.public_key(), note.SIG_TYPE_COSIGNATURE_V1)
    configure_witness(w.ledger.data_dir, "https://witness.example", str(vkey))
    checkpoint = w.ledger.checkpoint()
    assert checkpoint is not None
    body, _ = note.open_note(checkpoint.note)
    junk = note.cosign(body, "witness.example", Ed25519PrivateKey.generate(), 1_700_000_000).decode()
    w.raw.run(
        "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)",
        (checkpoint.size, "witness.example", junk, checkpoint.signed_at),
    )
    assert w.ledger.latest_checkpoint().cosignatures == ()  # type: ignore[union-attr]
    w.actors.ok("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    second = w.ledger.checkpoint()
    assert second is not None
    real = note.cosign(note.open_note(second.note)[0], "witness.example", witness, 1_700_000_000).decode()
    w.raw.run(
        "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)",
        (second.size, "witness.example", real, second.signed_at),
    )
    assert w.ledger.latest_checkpoint().cosignatures == (real,)  # type: ignore[union-attr]


def test_deleted_rows_are_missed_not_silently_omitted(world: World) -> None:
    w = world
    w.actors.ok("investigator", w.case_id, "FootageDerivativeCreated", derivative_created())
    assert w.rows("public_releases", w.case_id)  # the case's statistics row (not served as is)
    other = new_case_id()
    w.actors.ok("investigator", other, "CaseOpened", case_opened("CPD-2026-0002"))
    w.raw.run("DELETE FROM public_releases WHERE case_id = ?", (w.case_id,))
    with pytest.raises(StateTampered) as refused:
        w.ledger.public_releases()
    tampered(refused.value, stream="public_releases")
    w.raw.run("DELETE FROM case_state WHERE case_id = ?", (other,))
    with pytest.raises(StateTampered) as refused:
        w.ledger.list_cases()
    tampered(refused.value, stream="cases")


def test_a_column_of_the_wrong_type_is_a_tamper_and_is_never_echoed(world: World, caplog: Any) -> None:
    w = world
    if w.ledger.db.postgres:  # typed columns: the database itself refuses
        with pytest.raises(psycopg.Error):
            w.raw.run("UPDATE case_state SET updated_leaf = 'secret-value' WHERE case_id = ?", (w.case_id,))
        return
    w.raw.run("UPDATE case_state SET updated_leaf = 'secret-value' WHERE case_id = ?", (w.case_id,))
    w.ledger.appender._cache.clear()
    error = w.refused("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    tampered(error, case_id=w.case_id)
    assert "secret-value" not in str(error) and "secret-value" not in caplog.text


def test_a_moved_tracked_position_is_refused_by_replay_resume(world: World) -> None:
    w = world
    w.raw.run("UPDATE projection_tracking SET position = 0")
    with pytest.raises(StateTampered) as refused:
        rebuild(w.ledger.db, w.ledger.appender, from_zero=False)
    tampered(refused.value, stream="read_models")


def test_a_public_release_row_planted_or_stale_is_refused(world: World) -> None:
    w = world
    entry = {"case_id": w.case_id, "footage_id": "ftg-1", "status": "released"}
    w.raw.run(
        "UPDATE public_releases SET status = 'released', entry = ? WHERE case_id = ?", (json.dumps(entry), w.case_id)
    )
    with pytest.raises(StateTampered) as refused:
        w.ledger.public_releases()
    tampered(refused.value, stream="public_releases")


# --- checkpoints (found by the audit) -------------------------------------------------------------


def _audit_codes(w: World) -> list[tuple[str, Any]]:
    report = run_audit(read_database(w.ledger.db, mac=w.ledger.mac), options(w.ledger))
    return [(f.code, f.evidence.get("size")) for f in report.findings]


def test_a_deleted_or_retimed_checkpoint_row_is_an_audit_finding(world: World) -> None:
    w = world
    first = w.ledger.checkpoint()
    w.actors.ok("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    second = w.ledger.checkpoint()
    assert first is not None and second is not None and _audit_codes(w) == []
    if not w.append_only_edit("DELETE FROM log_checkpoints WHERE size = ?", (first.size,)):
        assert not w.append_only_edit("UPDATE log_checkpoints SET signed_at = '' WHERE size = ?", (second.size,))
        return
    assert _audit_codes(w) == [("CHECKPOINT_TAMPERED", first.size)]
    w.raw.run("UPDATE log_checkpoints SET signed_at = ? WHERE size = ?", ("2026-02-05T16:00:00.000000Z", second.size))
    assert sorted(_audit_codes(w)) == [("CHECKPOINT_TAMPERED", first.size), ("CHECKPOINT_TAMPERED", second.size)]


def test_entries_left_without_a_checkpoint_are_reported_and_become_a_finding_when_old(world: World) -> None:
    w = world
    w.ledger.checkpoint()
    receipt = w.actors.ok("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    report = run_audit(read_database(w.ledger.db, mac=w.ledger.mac), options(w.ledger))
    assert report.findings == [] and report.uncheckpointed == {"count": 1, "first_index": receipt.leaf_index}
    late = options(w.ledger)
    w.ledger.clock.advance(minutes=6)  # type: ignore[attr-defined]
    late.now = w.ledger.clock()
    report = run_audit(read_database(w.ledger.db, mac=w.ledger.mac), late)
    assert [(f.code, f.leaf_index, f.evidence["count"]) for f in report.findings] == [
        ("UNCHECKPOINTED_ENTRIES", receipt.leaf_index, 1)
    ]


def test_forward_dated_entries_without_a_checkpoint_are_a_finding_at_once(world: World) -> None:
    """An insider rewriting the tail with integration times in the future cannot pass it off as too
    recent to need a checkpoint: only entries dated up to now (+ the allowed skew) are."""
    w = world
    w.ledger.checkpoint()
    audited = options(w.ledger)
    w.ledger.clock.advance(minutes=4)  # type: ignore[attr-defined]
    receipt = w.actors.ok("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-2"))
    assert run_audit(read_database(w.ledger.db, mac=w.ledger.mac), audited).findings == []  # within the skew
    w.ledger.clock.advance(days=1)  # type: ignore[attr-defined]
    w.actors.ok("investigator", w.case_id, "FootageCaptured", footage_captured("ftg-3"))
    report = run_audit(read_database(w.ledger.db, mac=w.ledger.mac), audited)
    assert [(f.code, f.leaf_index, f.evidence["count"]) for f in report.findings] == [
        ("UNCHECKPOINTED_ENTRIES", receipt.leaf_index, 2)
    ]


# --- over HTTP and the command line ----------------------------------------------------------------


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        assert running.runtime.tokens is not None
        running.runtime.tokens.cache_seconds = 0  # every request reads its token row
        yield running


def test_http_answers_503_state_tampered_and_appends_nothing(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    api.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed())
    world = World(api.ledger, api.actors, Raw(api.ledger), case_id)
    world.edit_state(case_id, lambda s: s["holds"][0].update(active=False))
    api.ledger.appender._cache.clear()
    size = api.ledger.log_size()
    body = problem(api.post("supervisor", case_id, "FootageReleased", RELEASE), 503, "STATE_TAMPERED")
    assert body["refs"] == {"case_id": case_id} and "audit" in body["detail"] and "replay" in body["detail"]
    problem(api.client.get(f"/v1/cases/{case_id}", headers=api.auth("auditor")), 503, "STATE_TAMPERED")
    assert api.client.get("/v1/public/releases").json() == {"items": [], "next": None}
    assert api.ledger.log_size() == size


def _token_row(api: Api, token: str) -> tuple[Any, ...]:
    from ledger.tokens import token_id_of

    (row,) = Raw(api.ledger).run("SELECT * FROM api_tokens WHERE token_id = ?", (token_id_of(token),))
    return row


@pytest.mark.parametrize(
    "column, value",
    [("role", "supervisor"), ("actor", "Sgt. B. Chen"), ("expires_at", "2036-01-01T00:00:00.000000Z"), ("authority", "middlesex_da")],
)
def test_an_edited_token_is_401_and_the_audit_names_it(api: Api, column: str, value: str) -> None:
    from ledger.tokens import token_id_of

    token = api.issue("investigator")
    assert api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    world = World(api.ledger, api.actors, Raw(api.ledger), "")
    if not world.append_only_edit(f"UPDATE api_tokens SET {column} = ? WHERE token_id = ?", (value, token_id_of(token))):
        return
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")
    report = run_audit(read_database(api.ledger.db, mac=api.ledger.mac), options(api.ledger))
    assert [(f.code, f.evidence["token_id"]) for f in report.findings] == [("TOKEN_TAMPERED", token_id_of(token))]


def test_a_forged_token_row_is_401(api: Api) -> None:
    import hashlib
    import secrets

    token_id = secrets.token_hex(8)
    token = f"elt_{token_id}_{secrets.token_urlsafe(32)}"
    Raw(api.ledger).run(
        "INSERT INTO api_tokens (token_id, token_sha256, actor, role, authority, created_at, expires_at, mac)"
        " VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
        (token_id, hashlib.sha256(token.encode()).hexdigest(), "Sgt. B. Chen", "supervisor",
         "2026-01-01T00:00:00.000000Z", "2036-01-01T00:00:00.000000Z", "0" * 64),
    )
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")


def test_a_revoked_token_stays_revoked_when_its_old_row_is_restored(api: Api) -> None:
    from ledger.tokens import token_id_of

    token = api.issue("investigator")
    old = _token_row(api, token)
    assert api.runtime.tokens is not None
    api.runtime.tokens.revoke(token_id_of(token), now=api.ledger.clock())
    raw = Raw(api.ledger)
    world = World(api.ledger, api.actors, raw, "")
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")
    if not world.append_only_edit("DELETE FROM api_tokens WHERE token_id = ?", (token_id_of(token),)):
        assert not world.append_only_edit("DELETE FROM api_token_revocations WHERE token_id = ?", (token_id_of(token),))
        return
    raw.run(f"INSERT INTO api_tokens VALUES ({', '.join('?' * len(old))})", old)
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")
    raw.run("UPDATE api_token_revocations SET mac = ? WHERE token_id = ?", ("0" * 64, token_id_of(token)))
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")


def test_tokens_need_an_active_key_of_their_role(api: Api) -> None:
    from datetime import timedelta

    assert api.runtime.tokens is not None
    for actor, role in (("Det. Nobody", "investigator"), ("Det. A. Rivera", "supervisor")):
        with pytest.raises(LedgerError) as refused:
            api.runtime.tokens.issue(
                actor=actor, role=role, authority=None, expires_in=timedelta(hours=1), now=api.ledger.clock()
            )
        assert refused.value.code == "NO_ACTIVE_KEY"
    token = api.issue("investigator")
    assert api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    api.ledger.sign_and_append(
        _demo_admin(api.ledger), REGISTRY_CASE_ID, "KeyRevoked",
        {"key_id": api.actors.key_id("investigator"), "reason": "left the department"},
    )
    problem(api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHENTICATED")


def test_the_cli_refuses_with_exit_1_and_the_code(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands
    from ledger.envelope.keys import write_private_key

    commands()
    w = world
    w.edit_state(w.case_id, lambda s: s.update(summary="edited"))
    key_file = tmp_path / "rivera.pem"
    write_private_key(w.actors.keys["investigator"], key_file)
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(w.ledger.data_dir))
    if w.ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", w.ledger.settings.database_url)
    size = w.size()
    result = CliRunner().invoke(
        app, ["append", w.case_id, "FootageCaptured", "--key", str(key_file), "--body", json.dumps(footage_captured("ftg-2"))]
    )
    assert result.exit_code == 1 and "STATE_TAMPERED" in result.output and "replay" in result.output
    assert w.size() == size
    shown = CliRunner().invoke(app, ["case", "show", w.case_id])
    assert shown.exit_code == 1 and "STATE_TAMPERED" in shown.output


def test_a_custody_link_whose_step_is_not_a_number_is_named_by_the_audit(world: World) -> None:
    """SQLite keeps text written into an INTEGER column: the read refuses the chain and the audit
    names the link instead of failing on it. PostgreSQL's types refuse the edit itself."""
    w = world
    _transferred(w, 3)
    if w.ledger.db.postgres:
        with pytest.raises(psycopg.Error):
            w.raw.run("UPDATE case_custody SET step = 'x' WHERE case_id = ? AND step = 3", (w.case_id,))
        return
    w.raw.run("UPDATE case_custody SET step = 'x' WHERE case_id = ? AND step = 3", (w.case_id,))
    with pytest.raises(StateTampered):
        w.ledger.custody(w.case_id, "ftg-1")
    differences = _custody_drift(w)
    assert "case_custody footage ftg-1 step 3 missing" in differences
    repaired(w)
    assert [link["step"] for link in w.ledger.custody(w.case_id, "ftg-1")] == [1, 2, 3, 4]
