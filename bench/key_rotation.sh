#!/usr/bin/env bash
# Key rotation under load: starts a server on a free port with a fresh data directory, one
# client_credentials client per signing algorithm, then for DURATION seconds requests tokens
# from WORKERS concurrent workers and verifies every one against a JWKS cached for its max-age
# (examples/key_rotation_load.rs), while this script rotates a key through the CLI every
# INTERVAL seconds (round robin over the algorithms). Reports rotations done, tokens verified
# and verification failures (the run fails if there is any).
#
# Usage: bench/key_rotation.sh [DURATION=40] [WORKERS=4] [INTERVAL=2]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-40}
WORKERS=${2:-4}
INTERVAL=${3:-2}
ALGS=(RS256 PS256 ES256 EdDSA)

cargo build -q --bin latchkey --example key_rotation_load
BIN=target/debug/latchkey
LOAD=target/debug/examples/key_rotation_load

WORK=$(mktemp -d)
export LATCHKEY_DATA_DIR=$WORK/data LATCHKEY_KEYS_DIR=$WORK/keys LATCHKEY_LISTEN=127.0.0.1:0
export LATCHKEY_JWKS_MAX_AGE=1 LATCHKEY_RATE_LIMIT_PER_SECOND=0 RUST_LOG=warn
unset LATCHKEY_ISSUER LATCHKEY_DATABASE_URL

"$BIN" serve >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  grep -q '^Issuer: ' "$WORK/server.out" 2>/dev/null && break
  sleep 0.1
done
BASE=$(sed -n 's/^Issuer: //p' "$WORK/server.out")
echo "server $BASE (pid $SERVER), JWKS max-age ${LATCHKEY_JWKS_MAX_AGE} s"

CLIENTS=()
for alg in "${ALGS[@]}"; do
  json=$("$BIN" clients add --name "load $alg" --grant-type client_credentials --scope load --id-token-alg "$alg" --json)
  id=$(echo "$json" | sed -n 's/.*"client_id": "\([^"]*\)".*/\1/p')
  secret=$(echo "$json" | sed -n 's/.*"client_secret": "\([^"]*\)".*/\1/p')
  CLIENTS+=("$id:$secret:$alg")
done

"$LOAD" "$BASE" "$DURATION" "$WORKERS" "${CLIENTS[@]}" >"$WORK/load.out" 2>"$WORK/load.err" &
LOADPID=$!

rotations=0 refused=0 i=0
end=$((SECONDS + DURATION - 1))
while [ $SECONDS -lt $end ]; do
  sleep "$INTERVAL"
  alg=${ALGS[$((i % ${#ALGS[@]}))]}
  i=$((i + 1))
  if "$BIN" keys rotate --alg "$alg" >/dev/null 2>"$WORK/rotate.err"; then
    rotations=$((rotations + 1))
  elif grep -q -- '--force' "$WORK/rotate.err"; then
    refused=$((refused + 1)) # the next key was not yet published for max-age + refresh
  else
    cat "$WORK/rotate.err" >&2
    exit 1
  fi
done
status=0
wait $LOADPID || status=$?
echo "rotations through the CLI: $rotations (refused as too early: $refused)"
cat "$WORK/load.out"
if [ -s "$WORK/load.err" ]; then
  echo "first failures:"
  head -5 "$WORK/load.err"
fi
"$BIN" keys list
exit $status
