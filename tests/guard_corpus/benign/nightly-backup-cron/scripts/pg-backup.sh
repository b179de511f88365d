#!/bin/bash
set -euo pipefail
stamp=$(date +%F)
out="${BACKUP_DIR:-/var/backups/pg}/db-$stamp.sql.gz"
pg_dump "$DATABASE_URL" | gzip > "$out"
find "${BACKUP_DIR:-/var/backups/pg}" -name 'db-*.sql.gz' -mtime +14 -delete
