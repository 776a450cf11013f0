#!/usr/bin/env bash
# Restore a base backup into a new data directory, set up to replay the WAL archive up to a
# moment and then open for writes (docs/operations.md, "Backup and restore").
#
#   tools/backup/pg_restore_pitr.sh BASE_BACKUP WAL_ARCHIVE NEW_DATADIR 'TARGET TIME'
#
# TARGET TIME: a timestamp with time zone ('2026-12-05 11:20:00+00'), or 'latest' for all of
# the archive. NEW_DATADIR must not exist or be empty. Start the server on NEW_DATADIR
# afterwards (pg_ctl start, or the distribution's service); it replays the archive, stops
# at the target (transactions committed after it are not applied) and promotes itself.
set -euo pipefail
base="${1:?usage: pg_restore_pitr.sh BASE_BACKUP WAL_ARCHIVE NEW_DATADIR TARGET_TIME}"
archive="${2:?WAL_ARCHIVE}"
datadir="${3:?NEW_DATADIR}"
target="${4:?TARGET_TIME or latest}"
[ -f "$base/backup_manifest" ] || { echo "not a base backup: $base" >&2; exit 2; }
[ -d "$archive" ] || { echo "no WAL archive at $archive" >&2; exit 2; }
if [ -d "$datadir" ] && [ -n "$(ls -A "$datadir")" ]; then
  echo "refusing to restore over a non-empty $datadir" >&2
  exit 2
fi
mkdir -p "$datadir"
cp -a "$base/." "$datadir/"
rm -f "$datadir/backup_manifest" "$datadir/postmaster.pid"
chmod 700 "$datadir"
{
  echo "# written by tools/backup/pg_restore_pitr.sh"
  echo "restore_command = 'cp \"$archive/%f\" \"%p\"'"
  if [ "$target" = latest ]; then
    echo "recovery_target_timeline = 'latest'"
  else
    echo "recovery_target_time = '$target'"
    echo "recovery_target_inclusive = true"
  fi
  echo "recovery_target_action = 'promote'"
} >> "$datadir/postgresql.auto.conf"
touch "$datadir/recovery.signal"
echo "$datadir ready: start PostgreSQL on it to replay up to $target"
