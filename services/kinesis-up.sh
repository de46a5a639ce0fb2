#!/usr/bin/env bash
# kinesis-up.sh - start a Kinesis-compatible server (kinesalite) on 127.0.0.1 (idempotent).
#
# kinesalite 3.3.3 (MIT, Node.js, implements the Kinesis Data Streams JSON API) comes from the
# npm registry, installed once with `npm ci` from the pinned lock file in kinesalite/ (every
# package integrity-checked) into a cache folder, then run as a daemon bound to 127.0.0.1 only
# (its own CLI listens on every interface, so a small launcher written next to it is used).
#
# stdout: the endpoint URL (e.g. http://127.0.0.1:4567), nothing else. Messages go to stderr.
# Also writes $KINESIS_RUN_DIR/kinesis.env (KINESIS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS).
# Env: KINESIS_PORT (4567), KINESIS_DATA_DIR (empty: in memory), KINESIS_SHARD_LIMIT (1000),
#      KINESIS_CACHE_DIR, KINESIS_RUN_DIR, KINESIS_START_TIMEOUT (30 s). See README.md.
set -euo pipefail

DL_NAME=kinesis-up
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_common.sh
. "$HERE/_common.sh"

KINESIS_PORT="${KINESIS_PORT:-4567}"
KINESIS_CACHE_DIR="${KINESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/decisionloop/kinesis}"
KINESIS_RUN_DIR="${KINESIS_RUN_DIR:-/tmp/decisionloop/kinesis}"
KINESIS_DATA_DIR="${KINESIS_DATA_DIR:-}"
KINESIS_SHARD_LIMIT="${KINESIS_SHARD_LIMIT:-1000}"
KINESIS_START_TIMEOUT="${KINESIS_START_TIMEOUT:-30}"

for v in KINESIS_PORT KINESIS_SHARD_LIMIT KINESIS_START_TIMEOUT; do
  case "${!v}" in ''|*[!0-9]*) dl_die "$v must be a number, got '${!v}'" ;; esac
done
dl_need setsid flock node npm
LOCK_DIR="$HERE/kinesalite"
[ -f "$LOCK_DIR/package-lock.json" ] || dl_die "missing $LOCK_DIR/package-lock.json"
# The install folder is named by the lock file's hash: a changed lock installs afresh.
LOCK_HASH=$(sha256sum "$LOCK_DIR/package-lock.json" | cut -c1-12)
APP_DIR="$KINESIS_CACHE_DIR/kinesalite-3.3.3-$LOCK_HASH"
LAUNCHER="$APP_DIR/serve.js"
ENDPOINT="http://$DL_HOST:$KINESIS_PORT"
PIDFILE="$KINESIS_RUN_DIR/kinesalite.pid"
LOGFILE="$KINESIS_RUN_DIR/kinesalite.log"

# Exit 0 when a SigV4-signed ListStreams (dummy credentials: kinesalite checks the form of the
# signature, not the key) is answered with a stream list.
kinesis_ready() {
  "$DL_PY" - "$DL_HOST" "$KINESIS_PORT" <<'PY'
import datetime, hashlib, hmac, json, sys, urllib.request
host, port = sys.argv[1], sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)
amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
body = b"{}"
target = "Kinesis_20131202.ListStreams"
hosthdr, signed = f"{host}:{port}", "content-type;host;x-amz-date;x-amz-target"
headers = f"content-type:application/x-amz-json-1.1\nhost:{hosthdr}\nx-amz-date:{amz}\nx-amz-target:{target}\n"
creq = "\n".join(["POST", "/", "", headers, signed, hashlib.sha256(body).hexdigest()])
scope = f"{day}/us-east-1/kinesis/aws4_request"
sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
key = b"AWS4" + b"decisionloop"
for part in (day, "us-east-1", "kinesis", "aws4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(f"http://{hosthdr}/", data=body, method="POST", headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Date": amz, "X-Amz-Target": target,
    "Authorization": f"AWS4-HMAC-SHA256 Credential=decisionloop/{scope}, SignedHeaders={signed}, Signature={sig}"})
try:
    answer = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=3).read()
    sys.exit(0 if "StreamNames" in json.loads(answer) else 1)
except Exception:
    sys.exit(1)
PY
}

finish() {
  cat >"$KINESIS_RUN_DIR/kinesis.env" <<EOF
KINESIS_ENDPOINT_URL=$ENDPOINT
AWS_ENDPOINT_URL_KINESIS=$ENDPOINT
EOF
  printf '%s\n' "$ENDPOINT"
  exit 0
}

# install_kinesalite: `npm ci` from the pinned lock into a temporary folder, then rename it into
# place, so an interrupted install never leaves a half-filled $APP_DIR behind.
install_kinesalite() {
  local tmp
  mkdir -p "$KINESIS_CACHE_DIR"
  tmp=$(mktemp -d "$KINESIS_CACHE_DIR/.install.XXXXXX")
  cp "$LOCK_DIR/package.json" "$LOCK_DIR/package-lock.json" "$tmp/"
  dl_log "installing kinesalite 3.3.3 with npm (first run only) ..."
  # --ignore-scripts: leveldown's install step only looks for the prebuilt binary it ships,
  # which it also finds at run time.
  if ! (cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
        --loglevel=error >"$tmp/npm.log" 2>&1); then
    tail -n 20 "$tmp/npm.log" >&2 || true
    rm -rf "$tmp"
    dl_die "npm could not install kinesalite (see above)"
  fi
  cat >"$tmp/serve.js" <<'JS'
// Written by services/kinesis-up.sh: kinesalite on one address only (its CLI binds them all).
'use strict'
var argv = require('minimist')(process.argv.slice(2))
var server = require('kinesalite')(argv)
server.on('error', function (err) { console.error('kinesalite: ' + err.message); process.exit(1) })
server.listen(Number(argv.port), String(argv.host), function () {
  var address = server.address()
  console.log('Listening at http://%s:%s', address.address, address.port)
})
process.on('SIGTERM', function () { process.exit(0) })
JS
  rm -f "$tmp/npm.log"
  rm -rf "$APP_DIR"
  mv "$tmp" "$APP_DIR"
}

dl_lock "$KINESIS_RUN_DIR"

# Already running (started by us)? Then just make sure it answers.
if pid=$(dl_pid_alive "$PIDFILE" "$LAUNCHER"); then
  deadline=$(( $(date +%s) + KINESIS_START_TIMEOUT ))
  until kinesis_ready; do
    kill -0 "$pid" 2>/dev/null || break
    [ "$(date +%s)" -lt "$deadline" ] \
      || dl_die "pid $pid is running but $ENDPOINT did not answer within ${KINESIS_START_TIMEOUT}s (log: $LOGFILE)"
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    dl_log "already running (pid $pid) at $ENDPOINT"
    finish
  fi
fi
rm -f "$PIDFILE"

if dl_port_open "$KINESIS_PORT" >/dev/null; then
  dl_die "port $DL_HOST:$KINESIS_PORT is already in use by a process this script did not start; set KINESIS_PORT"
fi

if [ ! -f "$LAUNCHER" ] || [ ! -f "$APP_DIR/node_modules/kinesalite/package.json" ]; then
  t0=$(dl_now)
  install_kinesalite
  dl_log "cached $APP_DIR in $(dl_since "$t0")s"
fi

mkdir -p "$KINESIS_RUN_DIR"
args=(--host "$DL_HOST" --port "$KINESIS_PORT" --createStreamMs 10 --deleteStreamMs 10
  --updateStreamMs 10 --shardLimit "$KINESIS_SHARD_LIMIT")
storage="memory"
if [ -n "$KINESIS_DATA_DIR" ]; then
  mkdir -p "$KINESIS_DATA_DIR"
  args+=(--path "$KINESIS_DATA_DIR")
  storage="$KINESIS_DATA_DIR"
fi
printf '\n=== %s kinesis-up: starting kinesalite on %s, storage %s\n' "$(date -Is)" "$ENDPOINT" "$storage" >>"$LOGFILE"
t0=$(dl_now)
dl_start_daemon "$PIDFILE" "$LOGFILE" node "$LAUNCHER" "${args[@]}"
pid=$(cat "$PIDFILE")

deadline=$(( $(date +%s) + KINESIS_START_TIMEOUT ))
until kinesis_ready; do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 20 "$LOGFILE" >&2 || true
    rm -f "$PIDFILE"
    dl_die "kinesalite exited during startup (log: $LOGFILE)"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 20 "$LOGFILE" >&2 || true
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    dl_die "kinesalite did not answer on $ENDPOINT within ${KINESIS_START_TIMEOUT}s (log: $LOGFILE)"
  fi
  sleep 0.1
done
dl_log "kinesalite 3.3.3 (pid $pid) ready at $ENDPOINT in $(dl_since "$t0")s, storage $storage"
finish
