"""Storage of the ledger on the eventsourcing library (SQLite embedded, PostgreSQL in production)."""
