#!/usr/bin/env bash
# Backups of an evidence-ledger installation, in three sets that are never stored together
# (docs/operations.md):
#
#   backup.sh database --out DIR     the database: SQLite via `evidence-ledger db backup` (an online,
#                                    consistent copy), PostgreSQL via pg_basebackup (tar, WAL streamed);
#                                    not footage/ and tiles/: rsync them (docs/operations.md)
#   backup.sh keys --out DIR         exactly ledger.json, keys/ (log, service and state keys),
#                                    witnesses.json, tsa.json, genesis-request.json, checkpoints/
#                                    (the rollback guard), those present; nothing else of the data dir
#   backup.sh keystore --out DIR     the keystore of sealed records' keys (EVIDENCE_LEDGER_KEYSTORE_DIR,
#                                    or the demo keystore in the data dir)
#   backup.sh prune --base-dir DIR --archive DIR --keep N
#                                    PostgreSQL: keep the newest N base backups and the WAL they need
#
# The data dir and the database come from EVIDENCE_LEDGER_DATA_DIR and EVIDENCE_LEDGER_DATABASE_URL,
# as for `evidence-ledger serve`. pg_basebackup connects with EVIDENCE_LEDGER_BACKUP_PG_URL (a role
# with REPLICATION), else with the database URL (its ?schema= removed). Each set is written to a new
# file or directory named with the UTC time; nothing is overwritten. Exit non-zero on any failure.
set -euo pipefail

read -ra EL <<< "${EVIDENCE_LEDGER:-evidence-ledger}"  # the command, e.g. "python -m api"
PGBIN=${EVIDENCE_LEDGER_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
DATA_DIR=${EVIDENCE_LEDGER_DATA_DIR:-./data}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

die() { echo "backup.sh: $*" >&2; exit 2; }

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

[ $# -ge 1 ] || usage
what=$1
shift
OUT="" BASE_DIR="" ARCHIVE="" KEEP=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --base-dir) BASE_DIR=$2; shift 2 ;;
    --archive) ARCHIVE=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
umask 077

need_out() {
  [ -n "$OUT" ] || die "$what needs --out DIR"
  [ -d "$OUT" ] || die "--out $OUT is not a directory"
}

case $what in
  database)
    need_out
    url=${EVIDENCE_LEDGER_DATABASE_URL:-}
    case $url in
      postgres://*|postgresql://*)
        pg_url=${EVIDENCE_LEDGER_BACKUP_PG_URL:-${url%%\?*}}
        dest="$OUT/base-$STAMP"
        [ ! -e "$dest" ] || die "$dest exists"
        # -Ft -z: one compressed tar per tablespace; -X stream: the WAL to make it consistent is
        # inside (pg_wal.tar.gz), so the base backup restores even without the archive;
        # the backup_manifest lists every file with its SHA-256.
        "$PGBIN/pg_basebackup" -d "$pg_url" -D "$dest" -Ft -z -X stream -c fast --manifest-checksums=SHA256
        echo "base backup: $dest"
        ;;
      ""|sqlite://*|file://*)
        dest="$OUT/ledger-$STAMP.sqlite3"
        "${EL[@]}" db backup --data-dir "$DATA_DIR" --out "$dest"
        ;;
      *) die "EVIDENCE_LEDGER_DATABASE_URL is neither postgresql:// nor sqlite://" ;;
    esac
    ;;
  keys)
    need_out
    [ -f "$DATA_DIR/ledger.json" ] || die "$DATA_DIR is not an initialised data dir (no ledger.json)"
    dest="$OUT/keys-$STAMP.tar.gz"
    [ ! -e "$dest" ] || die "$dest exists"
    # Exactly these (those present), never "the data dir but …": a keystore under another name or a
    # legacy seal.key in the data dir must not end up beside keys/state.key. No lock files.
    members=()
    for name in ledger.json keys witnesses.json tsa.json genesis-request.json checkpoints; do
      [ ! -e "$DATA_DIR/$name" ] || members+=("./$name")
    done
    tar -C "$DATA_DIR" -czf "$dest" --exclude='.lock' --exclude='*.lock' "${members[@]}"
    echo "keys and rollback guard: $dest"
    ;;
  keystore)
    need_out
    keystore=${EVIDENCE_LEDGER_KEYSTORE_DIR:-$DATA_DIR/keystore}
    [ -d "$keystore" ] || die "no keystore at $keystore (EVIDENCE_LEDGER_KEYSTORE_DIR)"
    dest="$OUT/keystore-$STAMP.tar.gz"
    [ ! -e "$dest" ] || die "$dest exists"
    tar -C "$keystore" -czf "$dest" .
    echo "keystore: $dest"
    ;;
  prune)
    [ -n "$BASE_DIR" ] && [ -n "$ARCHIVE" ] && [ -n "$KEEP" ] || die "prune needs --base-dir, --archive and --keep"
    [ "$KEEP" -ge 1 ] 2>/dev/null || die "--keep must be a number >= 1"
    mapfile -t bases < <(find "$BASE_DIR" -mindepth 1 -maxdepth 1 -type d -name 'base-*' | sort)
    [ "${#bases[@]}" -gt 0 ] || die "no base-* backups in $BASE_DIR"
    oldest_kept=${bases[$(( ${#bases[@]} > KEEP ? ${#bases[@]} - KEEP : 0 ))]}
    # The first WAL segment the oldest kept base backup needs, from its manifest's WAL range.
    first_wal=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["WAL-Ranges"][0]
hi, lo = (int(x, 16) for x in r["Start-LSN"].split("/"))
print("%08X%08X%08X" % (r["Timeline"], hi, lo // (16 * 1024 * 1024)))' "$oldest_kept/backup_manifest")
    for base in "${bases[@]}"; do
      if [[ "$base" < "$oldest_kept" ]]; then rm -rf -- "$base"; echo "removed $base"; fi
    done
    "$PGBIN/pg_archivecleanup" "$ARCHIVE" "$first_wal"
    for history in "$ARCHIVE"/*.backup; do  # the removed base backups' history files
      [ -e "$history" ] || continue
      name=$(basename "$history")
      if [[ "${name:0:24}" < "$first_wal" ]]; then rm -f -- "$history"; fi
    done
    echo "kept $(( ${#bases[@]} < KEEP ? ${#bases[@]} : KEEP )) base backup(s); WAL before $first_wal removed"
    ;;
  *) usage ;;
esac
