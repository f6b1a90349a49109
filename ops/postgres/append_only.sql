-- Append-only guards for the evidence ledger's PostgreSQL tables.
--
-- Run as the role that OWNS the ledger's tables (the role `evidence-ledger db migrate` ran as),
-- after the migration and BEFORE ops/postgres/roles.sql:
--
--   psql -X -v ON_ERROR_STOP=1 --single-transaction -v schema=public \
--        -f ops/postgres/append_only.sql "postgresql://ledger_owner@db.example/ledger"
--
-- Variables: schema (default public). Safe to re-run.
--
-- For each append-only table (ledger_events, log_entries, log_nodes, log_checkpoints,
-- log_cosignatures) this installs
--   * a BEFORE UPDATE OR DELETE ... FOR EACH ROW trigger, and
--   * a BEFORE UPDATE OR DELETE OR TRUNCATE ... FOR EACH STATEMENT trigger (TRUNCATE fires no row
--     triggers, and a statement trigger also rejects an UPDATE/DELETE that matches no row),
-- all of which raise "append-only table <schema>.<table>: <op> is not allowed" (SQLSTATE P0001).
-- They apply to every role, the owner included (unlike GRANT/REVOKE, which never bind the owner).
--
-- The triggers are set ENABLE ALWAYS, so they also fire under session_replication_role = replica
-- (the usual superuser way to skip triggers). An owner or superuser can still DISABLE or DROP
-- them: see ops/postgres/README.md for what this does not stop.

\if :{?schema}
\else
\set schema public
\endif
SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION :"schema".evidence_ledger_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'append-only table %.%: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001',
              HINT = 'the evidence ledger only ever INSERTs into this table; see ops/postgres/README.md';
END
$fn$;

COMMENT ON FUNCTION :"schema".evidence_ledger_reject_change() IS
    'evidence-ledger: rejects UPDATE, DELETE and TRUNCATE on append-only tables (ops/postgres/append_only.sql)';

-- A trigger function is never callable directly; revoke the default PUBLIC grant anyway.
REVOKE ALL ON FUNCTION :"schema".evidence_ledger_reject_change() FROM PUBLIC;

-- One set of statements per table, generated with the schema and table names quoted by format().
SELECT format(
           'DROP TRIGGER IF EXISTS evidence_ledger_append_only_row ON %1$I.%2$I;'
           ' CREATE TRIGGER evidence_ledger_append_only_row BEFORE UPDATE OR DELETE ON %1$I.%2$I'
           ' FOR EACH ROW EXECUTE FUNCTION %1$I.evidence_ledger_reject_change();'
           ' ALTER TABLE %1$I.%2$I ENABLE ALWAYS TRIGGER evidence_ledger_append_only_row;'
           ' DROP TRIGGER IF EXISTS evidence_ledger_append_only_stmt ON %1$I.%2$I;'
           ' CREATE TRIGGER evidence_ledger_append_only_stmt BEFORE UPDATE OR DELETE OR TRUNCATE ON %1$I.%2$I'
           ' FOR EACH STATEMENT EXECUTE FUNCTION %1$I.evidence_ledger_reject_change();'
           ' ALTER TABLE %1$I.%2$I ENABLE ALWAYS TRIGGER evidence_ledger_append_only_stmt',
           :'schema', t.name)
FROM unnest(ARRAY['ledger_events', 'log_entries', 'log_nodes', 'log_checkpoints', 'log_cosignatures'])
     AS t(name)
\gexec

-- Fail loudly if any table is missing its two triggers (e.g. the migration was not run first).
SELECT set_config('evidence_ledger.schema', :'schema', false) AS schema \gset _
DO $check$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(t.name, ', ') INTO missing
    FROM unnest(ARRAY['ledger_events', 'log_entries', 'log_nodes', 'log_checkpoints', 'log_cosignatures'])
         AS t(name)
    WHERE (SELECT count(*) FROM pg_trigger g
            WHERE g.tgrelid = to_regclass(format('%I.%I', current_setting('evidence_ledger.schema'), t.name))
              AND g.tgname IN ('evidence_ledger_append_only_row', 'evidence_ledger_append_only_stmt')
              AND g.tgenabled = 'A') <> 2;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'append-only triggers missing on: %', missing;
    END IF;
END
$check$;
