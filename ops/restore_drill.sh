#!/usr/bin/env bash
# The restore drill (docs/operations.md): restore a backup to a fresh instance, start the service on
# it and audit it against the newest checkpoint kept outside the backup. Exit 0 passed, 1 failed
# (the reason is printed: a rollback, a finding), 2 the backup cannot be used. Options: --help.
#
#   ops/restore_drill.sh --backend sqlite --database backups/db/ledger-20261203T220000Z.sqlite3 \
#       --keys backups/keys/keys-20261203T220000Z.tar.gz --from-checkpoint newest-witnessed.txt
#   ops/restore_drill.sh --backend postgres --database backups/db/base-20261203T220000Z \
#       --wal-archive /srv/wal-archive --pg-database ledger --keys backups/keys/keys-….tar.gz \
#       --from-checkpoint newest-witnessed.txt
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# The Python the installed evidence-ledger runs with (its virtualenv), unless PYTHON says otherwise.
if [ -z "${PYTHON:-}" ]; then
  EL=$(command -v evidence-ledger || true)
  PYTHON=python3
  if [ -n "$EL" ] && [ -x "$(dirname "$EL")/python" ]; then PYTHON="$(dirname "$EL")/python"; fi
fi
exec "$PYTHON" -m ops.backup.drill "$@"
