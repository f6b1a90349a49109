-- The evidence ledger's least-privilege application role.
--
-- Run AFTER `evidence-ledger db migrate` (as the owner role) and AFTER ops/postgres/append_only.sql,
-- as a superuser (or as the owner of the ledger's tables, if that role also has CREATEROLE):
--
--   psql -X -v ON_ERROR_STOP=1 --single-transaction -v app_role=evidence_ledger_app -v schema=public \
--        -f ops/postgres/roles.sql "postgresql://postgres@db.example/ledger"
--
-- Variables: app_role (required), schema (default public). Safe to re-run: the role's privileges
-- in the schema are revoked and granted again, so the result is always exactly what is below.
-- Re-run it after every migration that adds a table.
--
-- What the running service gets (and nothing else):
--   append-only tables  ledger_events, log_entries, log_nodes, log_checkpoints, log_cosignatures
--                       SELECT, INSERT
--   ledger_events       also DELETE: only because `LOCK TABLE ledger_events IN EXCLUSIVE MODE`
--                       (the eventsourcing library's write lock, taken by every append and
--                       checkpoint) needs table-level UPDATE, DELETE or TRUNCATE on PostgreSQL 15
--                       (INSERT alone, or a column-level UPDATE, is refused). DELETE is the
--                       narrowest of the three (no SELECT ... FOR UPDATE/SHARE, no column writes,
--                       and unlike TRUNCATE it fires row triggers), and the append-only triggers
--                       reject every DELETE. This script refuses to run if they are missing.
--   read models         case_state, case_timeline, public_releases, projection_tracking
--                       SELECT, INSERT, UPDATE, DELETE (upserts; rebuild DELETEs and refills them)
--   sealed_records      SELECT, INSERT, UPDATE, DELETE
--   ledger_meta         SELECT (the schema version check)
--   sequence            USAGE on ledger_events' notification_id sequence (nextval on INSERT)
--   type                USAGE on the composite type stored_event_uuid (the library's batch insert)
--   database, schema    CONNECT, USAGE
-- No ownership, no TRUNCATE, no CREATE on the schema, no role attributes (NOSUPERUSER NOCREATEDB
-- NOCREATEROLE NOREPLICATION NOBYPASSRLS); a check at the end fails the script if any of that is
-- not so, whatever granted it (PUBLIC, a role membership, an earlier manual GRANT).
--
-- The role is created without a password; set one separately so it never appears in a command
-- line or shell history:  psql ... -c '\password evidence_ledger_app'

\if :{?app_role}
\else
\echo 'roles.sql: set the application role name with -v app_role=NAME'
DO $$ BEGIN RAISE EXCEPTION 'roles.sql needs -v app_role=NAME'; END $$;
\endif
\if :{?schema}
\else
\set schema public
\endif
SET client_min_messages = warning;

SELECT set_config('evidence_ledger.schema', :'schema', false) AS schema,
       set_config('evidence_ledger.app_role', :'app_role', false) AS app_role \gset _

-- 1. The append-only triggers must already be installed: DELETE on ledger_events is granted below.
DO $require_triggers$
DECLARE
    s text := current_setting('evidence_ledger.schema');
    missing text;
BEGIN
    SELECT string_agg(t.name, ', ') INTO missing
    FROM unnest(ARRAY['ledger_events', 'log_entries', 'log_nodes', 'log_checkpoints', 'log_cosignatures'])
         AS t(name)
    WHERE to_regclass(format('%I.%I', s, t.name)) IS NULL
       OR (SELECT count(*) FROM pg_trigger g
            WHERE g.tgrelid = to_regclass(format('%I.%I', s, t.name))
              AND g.tgname IN ('evidence_ledger_append_only_row', 'evidence_ledger_append_only_stmt')
              AND g.tgenabled IN ('O', 'A')) <> 2;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'tables or append-only triggers missing on: %', missing
            USING HINT = 'run `evidence-ledger db migrate` and then ops/postgres/append_only.sql first';
    END IF;
END
$require_triggers$;

-- 2. The role: created if absent, attributes forced either way.
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role')
\gexec
ALTER ROLE :"app_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;

-- 3. Start from nothing in this schema, then grant exactly what the service uses.
REVOKE ALL ON ALL TABLES IN SCHEMA :"schema" FROM :"app_role";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA :"schema" FROM :"app_role";
REVOKE ALL ON SCHEMA :"schema" FROM :"app_role";

GRANT CONNECT ON DATABASE :"DBNAME" TO :"app_role";
GRANT USAGE ON SCHEMA :"schema" TO :"app_role";

GRANT SELECT, INSERT ON
    :"schema".ledger_events, :"schema".log_entries, :"schema".log_nodes,
    :"schema".log_checkpoints, :"schema".log_cosignatures
    TO :"app_role";
GRANT DELETE ON :"schema".ledger_events TO :"app_role";  -- for LOCK TABLE ... EXCLUSIVE only; see above

GRANT SELECT, INSERT, UPDATE, DELETE ON
    :"schema".case_state, :"schema".case_timeline, :"schema".public_releases,
    :"schema".projection_tracking, :"schema".sealed_records
    TO :"app_role";
GRANT SELECT ON :"schema".ledger_meta TO :"app_role";

SELECT format('GRANT USAGE ON SEQUENCE %s TO %I',
              pg_get_serial_sequence(format('%I.%I', :'schema', 'ledger_events'), 'notification_id'),
              :'app_role')
\gexec
GRANT USAGE ON TYPE :"schema".stored_event_uuid TO :"app_role";

-- 4. Check the effective result (PUBLIC grants and role memberships included).
DO $verify$
DECLARE
    s text := current_setting('evidence_ledger.schema');
    r text := current_setting('evidence_ledger.app_role');
    append_only text[] := ARRAY['ledger_events', 'log_entries', 'log_nodes', 'log_checkpoints', 'log_cosignatures'];
    rebuildable text[] := ARRAY['case_state', 'case_timeline', 'public_releases', 'projection_tracking',
                                'sealed_records'];
    problems text[] := '{}';
    t record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r
                AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)) THEN
        problems := problems || format('role %s has a dangerous attribute', r);
    END IF;
    IF has_schema_privilege(r, s, 'CREATE') THEN
        problems := problems || format('role %s may CREATE in schema %s (REVOKE CREATE ON SCHEMA %I FROM PUBLIC?)', r, s, s);
    END IF;
    FOR t IN
        SELECT c.oid, c.relname, c.relowner, c.relkind FROM pg_class c
        WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    LOOP
        IF pg_has_role(r, t.relowner, 'USAGE') THEN
            problems := problems || format('role %s owns (or acts as the owner of) %s', r, t.relname);
        END IF;
        CONTINUE WHEN t.relkind = 'S';
        IF has_table_privilege(r, t.oid, 'TRUNCATE') THEN
            problems := problems || format('role %s may TRUNCATE %s', r, t.relname);
        END IF;
        IF has_table_privilege(r, t.oid, 'REFERENCES') OR has_table_privilege(r, t.oid, 'TRIGGER') THEN
            problems := problems || format('role %s has REFERENCES or TRIGGER on %s', r, t.relname);
        END IF;
        IF t.relname = ANY (append_only) AND has_table_privilege(r, t.oid, 'UPDATE') THEN
            problems := problems || format('role %s may UPDATE append-only %s', r, t.relname);
        END IF;
        IF t.relname = ANY (append_only) AND t.relname <> 'ledger_events'
           AND has_table_privilege(r, t.oid, 'DELETE') THEN
            problems := problems || format('role %s may DELETE from append-only %s', r, t.relname);
        END IF;
        IF t.relname = 'ledger_meta' AND has_table_privilege(r, t.oid, 'INSERT, UPDATE, DELETE') THEN
            problems := problems || format('role %s may write %s', r, t.relname);
        END IF;
        IF NOT (t.relname = ANY (append_only || rebuildable || ARRAY['ledger_meta']))
           AND has_table_privilege(r, t.oid, 'INSERT, UPDATE, DELETE') THEN
            problems := problems || format('role %s may write %s, which the service does not use', r, t.relname);
        END IF;
    END LOOP;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'application role is not least-privilege: %', array_to_string(problems, '; ');
    END IF;
END
$verify$;
