#!/usr/bin/env bash
# Soak: does the database stay flat under steady load once the purge runs? Starts a server on
# a free loopback port with a fresh SQLite database and short lifetimes (sessions and refresh
# tokens 10 s, purge every 5 s), then for DURATION seconds runs full code flows back to back
# (authorize, password sign-in, code exchange, two refreshes), at most MAX_FLOWS, and
# every REPORT seconds prints the row counts of the tables the purge keeps in check and the size
# of the database file (with its WAL). Loopback only; bounded in time and count.
#
# Usage: bench/soak.sh [DURATION=60] [MAX_FLOWS=5000] [REPORT=10]
# Needs curl and sqlite3; builds the debug binary (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
MAX_FLOWS=${2:-5000}
REPORT=${3:-10}

cargo build -q --bin latchkey
BIN=${CARGO_TARGET_DIR:-target}/debug/latchkey

WORK=$(mktemp -d)
export LATCHKEY_DATA_DIR=$WORK/data LATCHKEY_KEYS_DIR=$WORK/keys LATCHKEY_LISTEN=127.0.0.1:0
export LATCHKEY_SESSION_TTL=10 LATCHKEY_REFRESH_TOKEN_TTL=10 LATCHKEY_REFRESH_REUSE_GRACE_SECS=0
export LATCHKEY_PURGE_INTERVAL_SECS=5 LATCHKEY_RATE_LIMIT_PER_SECOND=0 RUST_LOG=warn
unset LATCHKEY_ISSUER LATCHKEY_DATABASE_URL LATCHKEY_EPHEMERAL_URL

"$BIN" serve >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  grep -q '^Issuer: ' "$WORK/server.out" 2>/dev/null && break
  sleep 0.1
done
BASE=$(sed -n 's/^Issuer: //p' "$WORK/server.out")
case "$BASE" in http://localhost:*|http://127.0.0.1:*) ;; *) echo "not loopback: $BASE" >&2; exit 1 ;; esac
CB=https://app.example/callback
json=$("$BIN" clients add --name soak --redirect-uri $CB --first-party --json)
ID=$(echo "$json" | sed -n 's/.*"client_id": "\([^"]*\)".*/\1/p')
SECRET=$(echo "$json" | sed -n 's/.*"client_secret": "\([^"]*\)".*/\1/p')
echo "quiet river stone 1234" | "$BIN" users add --username soak --email soak@example.com --password-stdin >/dev/null
DB=$LATCHKEY_DATA_DIR/latchkey.db

# One flow in a fresh cookie jar; prints nothing, fails on any unexpected answer.
flow() {
  local jar=$WORK/jar loc page action csrf code rt
  rm -f "$jar"
  loc=$(curl -s -o /dev/null -c "$jar" -b "$jar" -w '%{redirect_url}' \
    "$BASE/authorize?response_type=code&client_id=$ID&redirect_uri=$CB&scope=openid%20offline_access&state=s&nonce=n")
  page=$(curl -s -c "$jar" -b "$jar" "$loc")
  action=$(echo "$page" | sed -n 's/.*<form method="post" action="\([^"]*\)" id="login".*/\1/p' | sed 's/&amp;/\&/g')
  csrf=$(echo "$page" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
  loc=$(curl -s -o /dev/null -c "$jar" -b "$jar" -w '%{redirect_url}' --data-urlencode "csrf=$csrf" \
    --data-urlencode username=soak --data-urlencode "password=quiet river stone 1234" "$BASE${action#$BASE}")
  while [[ $loc != $CB* ]]; do
    [ -n "$loc" ] || { echo "flow stopped" >&2; return 1; }
    loc=$(curl -s -o /dev/null -c "$jar" -b "$jar" -w '%{redirect_url}' "$loc")
  done
  code=$(echo "$loc" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
  rt=$(curl -s -u "$ID:$SECRET" -d grant_type=authorization_code -d "code=$code" -d "redirect_uri=$CB" "$BASE/token" |
    sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
  for _ in 1 2; do
    rt=$(curl -s -u "$ID:$SECRET" -d grant_type=refresh_token --data-urlencode "refresh_token=$rt" "$BASE/token" |
      sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
    [ -n "$rt" ] || { echo "refresh failed" >&2; return 1; }
  done
}

counts() {
  local size
  size=$(du -cb "$DB" "$DB-wal" 2>/dev/null | tail -1 | cut -f1)
  sqlite3 "$DB" "SELECT (SELECT COUNT(*) FROM grants) || ' ' || (SELECT COUNT(*) FROM refresh_tokens) || ' ' ||
    (SELECT COUNT(*) FROM sessions) || ' ' || (SELECT COUNT(*) FROM audit_events)" | {
    read -r g r s a
    printf '%6s s %7s flows %7s grants %7s refresh_tokens %7s sessions %7s audit_events %9s bytes\n' \
      "$1" "$2" "$g" "$r" "$s" "$a" "$size"
  }
}

flows=0 start=$SECONDS next=$REPORT
counts 0 0
while [ $((SECONDS - start)) -lt "$DURATION" ] && [ $flows -lt "$MAX_FLOWS" ]; do
  flow
  flows=$((flows + 1))
  if [ $((SECONDS - start)) -ge $next ]; then
    counts $((SECONDS - start)) $flows
    next=$((next + REPORT))
  fi
done
counts $((SECONDS - start)) $flows
