#!/usr/bin/env bash
# Forward-auth checks under load: checks/s, p50/p99 and server CPU per check for an
# authenticated request, as a reverse proxy asks them (bench/gateway_load.py drives it; the
# server's CPU is read from /proc, so the driver's own does not count). Target: at most
# 0.05 ms of server CPU per check on the embedded default, at most twice that on Redis.
#
#   bench/gateway.sh                # SQLite + in-process ephemeral state (the embedded default)
#   bench/gateway.sh postgres       # Postgres + Redis on 127.0.0.1 (a fresh database and key prefix)
#
# Environment: BENCH_DURATION (s, default 10), BENCH_CONCURRENCY (default "1 16 64"),
# BENCH_BIN (a latchkey binary to use instead of building the release one).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
if [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release --quiet
    BENCH_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/latchkey"
fi
bin="$BENCH_BIN"

work="$(mktemp -d)"
port="${BENCH_PORT:-18090}"
cat >"$work/latchkey.toml" <<TOML
[gateway]
enabled = true
cookie_domain = "localhost"

[[gateway.rules]]
hosts = ["*.bench.localhost"]
policy = "one_factor"
TOML
export LATCHKEY_CONFIG="$work/latchkey.toml"
export LATCHKEY_DATA_DIR="$work/data" LATCHKEY_KEYS_DIR="$work/keys"
export LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_ISSUER="http://localhost:$port"
export LATCHKEY_RATE_LIMIT_PER_SECOND=0 LATCHKEY_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=warn
db=""
if [ "$backend" = postgres ]; then
    db="latchkey_gwbench_$(date +%s)"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
    export LATCHKEY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
    export LATCHKEY_EPHEMERAL_URL="redis://127.0.0.1:6379" LATCHKEY_EPHEMERAL_PREFIX="latchkey-gwbench-$db:"
fi
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" migrate
echo 'violet hammer quiz 1234' | "$bin" users add --username bench --email bench@example.com --password-stdin >/dev/null
"$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "backend: $backend; server pid $server_pid; RSS at idle: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"
for c in ${BENCH_CONCURRENCY:-1 16 64}; do
    python3 bench/gateway_load.py "http://127.0.0.1:$port" "$server_pid" "${BENCH_DURATION:-10}" "$c"
done
echo "RSS after: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"
