#!/usr/bin/env bash
# A base backup of the AMI database cluster, verified, for point-in-time recovery together with
# the WAL archive (docs/operations.md, "Backup and restore").
#
#   tools/backup/pg_base_backup.sh BACKUP_ROOT
#
# Connection from libpq's environment (PGHOST, PGPORT, PGUSER; a role with REPLICATION).
# Writes BACKUP_ROOT/base-<UTC timestamp>/ (plain format, with a SHA-256 manifest) and checks it
# with pg_verifybackup. WAL is not copied: the server archives it continuously
# (archive_command), and a restore replays it from there up to the chosen moment.
set -euo pipefail
root="${1:?usage: pg_base_backup.sh BACKUP_ROOT}"
bin="${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -n1)}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$root/base-$stamp"
mkdir -p "$root"
"$bin/pg_basebackup" --pgdata="$target" --format=plain --wal-method=none --checkpoint=fast \
  --manifest-checksums=SHA256 --label="ami-$stamp" --no-password
# -n: the WAL is in the archive, not in the backup; everything else is checked against the manifest.
"$bin/pg_verifybackup" --no-parse-wal "$target"
echo "$target"
