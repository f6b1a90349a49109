#!/bin/sh
# PostgreSQL's archive_command: copy one finished WAL segment into the archive, durably.
#   archive_command = '/opt/evidence-ledger/ops/backup/archive_wal.sh %p %f /srv/wal-archive'
# Exit 0 only once the file is in the archive and fsynced: PostgreSQL then recycles the segment.
# A segment already archived with the same bytes is success (a retry after a crash); with other
# bytes it is a failure, never an overwrite: the archive is evidence of what the server wrote.
set -eu
src=$1
name=$2
dir=$3
if [ -f "$dir/$name" ]; then
  if cmp -s "$src" "$dir/$name"; then exit 0; fi
  echo "archive_wal: $dir/$name exists with other content; not overwriting it" >&2
  exit 1
fi
tmp="$dir/.$name.tmp.$$"
cp "$src" "$tmp"
sync "$tmp"
mv "$tmp" "$dir/$name"
sync "$dir"
