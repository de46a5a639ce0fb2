#!/usr/bin/env bash
# kinesis-down.sh - stop the kinesalite server started by kinesis-up.sh (by its pid file).
# Idempotent. Usage: kinesis-down.sh [--purge]   --purge also deletes $KINESIS_RUN_DIR (log,
# env file) and $KINESIS_DATA_DIR when set. The npm install in $KINESIS_CACHE_DIR is kept.
set -euo pipefail

DL_NAME=kinesis-down
# shellcheck source=_common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

KINESIS_RUN_DIR="${KINESIS_RUN_DIR:-/tmp/decisionloop/kinesis}"
KINESIS_DATA_DIR="${KINESIS_DATA_DIR:-}"
KINESIS_STOP_TIMEOUT="${KINESIS_STOP_TIMEOUT:-10}"
purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  '') ;;
  *) dl_die "usage: kinesis-down.sh [--purge]" ;;
esac
case "$KINESIS_STOP_TIMEOUT" in ''|*[!0-9]*) dl_die "KINESIS_STOP_TIMEOUT must be whole seconds" ;; esac

if [ ! -d "$KINESIS_RUN_DIR" ]; then
  dl_log "not running (no $KINESIS_RUN_DIR)"
  if [ "$purge" = 1 ] && [ -n "$KINESIS_DATA_DIR" ]; then rm -rf "$KINESIS_DATA_DIR"; fi
  exit 0
fi
dl_lock "$KINESIS_RUN_DIR"
dl_stop "$KINESIS_RUN_DIR/kinesalite.pid" "/serve.js --host" "$KINESIS_STOP_TIMEOUT"
rm -f "$KINESIS_RUN_DIR/kinesis.env"
if [ "$purge" = 1 ]; then
  if [ -n "$KINESIS_DATA_DIR" ]; then rm -rf "$KINESIS_DATA_DIR"; fi
  rm -rf "$KINESIS_RUN_DIR"
  dl_log "purged $KINESIS_RUN_DIR${KINESIS_DATA_DIR:+ and $KINESIS_DATA_DIR}"
fi
