#!/usr/bin/env bash
# Load run of the main protocol flows against a release build, measured with the shared load
# driver (../shared/tools/oidc-bench): ops/s, p50/p90/p99, server CPU and RSS per scenario.
# Quote server CPU per operation (CPU% / 100 / ops/s) next to the throughput.
#
#   bench/oidc.sh                 # SQLite + in-process ephemeral state (the embedded default)
#   bench/oidc.sh postgres        # Postgres + Redis on 127.0.0.1 (a fresh database and key prefix)
#
# Environment: BENCH_DURATION (s, default 10), BENCH_CONCURRENCY (default 1,16,64),
# BENCH_SCENARIOS (default all), BENCH_JSON (a file for the driver's JSON output).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
driver_dir="../shared/tools/oidc-bench"
export CARGO_TARGET_DIR_DRIVER="${CARGO_TARGET_DIR_DRIVER:-/tmp/oidc-bench-target}"

cargo build --release --quiet
(cd "$driver_dir" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR_DRIVER" cargo build --release --quiet)
driver="$CARGO_TARGET_DIR_DRIVER/release/oidc-bench"
bin="$PWD/target/release/latchkey"

work="$(mktemp -d)"
port="${BENCH_PORT:-18080}"
export LATCHKEY_DATA_DIR="$work/data" LATCHKEY_KEYS_DIR="$work/keys"
export LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_ISSUER="http://127.0.0.1:$port"
export LATCHKEY_RATE_LIMIT_PER_SECOND=0 RUST_LOG=warn
db=""
if [ "$backend" = postgres ]; then
    db="latchkey_bench_$(date +%s)"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
    export LATCHKEY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
    export LATCHKEY_DATABASE_MAX_CONNECTIONS=16
    export LATCHKEY_EPHEMERAL_URL="redis://127.0.0.1:6379" LATCHKEY_EPHEMERAL_PREFIX="latchkey-bench-$db:"
fi
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" migrate
client_json="$("$bin" clients add --name bench --redirect-uri http://127.0.0.1:9/cb --first-party \
    --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
    --scope bench --json)"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$client_json"; }
echo 'violet hammer quiz 1234' | "$bin" users add --username bench --email bench@example.com --password-stdin >/dev/null

"$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "backend: $backend; server pid $server_pid; RSS at idle: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"

args=(--issuer "http://127.0.0.1:$port" --client-id "$(field client_id)" --client-secret "$(field client_secret)"
    --redirect-uri http://127.0.0.1:9/cb --username bench --password 'violet hammer quiz 1234' --cc-scope bench
    --server-pid "$server_pid" --duration "${BENCH_DURATION:-10}" --warmup 2
    --concurrency "${BENCH_CONCURRENCY:-1,16,64}" --label "latchkey-$backend")
[ -n "${BENCH_SCENARIOS:-}" ] && args+=(--scenarios "$BENCH_SCENARIOS")
[ -n "${BENCH_JSON:-}" ] && args+=(--json "$BENCH_JSON")
"$driver" "${args[@]}"
echo "RSS after the run: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"
