#!/usr/bin/env bash
# Load run of the main protocol flows against a release build, measured with the shared load
# driver (../shared/tools/oidc-bench): ops/s, p50/p90/p99, server CPU and RSS per scenario.
# Quote server CPU per operation (CPU% / 100 / ops/s) next to the throughput.
#
#   bench/oidc.sh                 # SQLite + in-process ephemeral state (the embedded default)
#   bench/oidc.sh postgres        # Postgres + Redis on 127.0.0.1 (a fresh database and key prefix)
#
# Environment: BENCH_DURATION (s, default 10), BENCH_CONCURRENCY (default 1,16,64),
# BENCH_SCENARIOS (default all), BENCH_JSON (a file for the driver's JSON output), BENCH_BIN
# (a latchkey binary to use instead of building the release one).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
driver_dir="../shared/tools/oidc-bench"
export CARGO_TARGET_DIR_DRIVER="${CARGO_TARGET_DIR_DRIVER:-/tmp/oidc-bench-target}"

(cd "$driver_dir" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR_DRIVER" cargo build --release --quiet)
driver="$CARGO_TARGET_DIR_DRIVER/release/oidc-bench"
source bench/lib.sh
bin="$(bench_bin)"

work="$(mktemp -d)"
port="${BENCH_PORT:-18080}"
trap bench_cleanup EXIT
bench_backend "$backend" bench
export LATCHKEY_ISSUER="http://127.0.0.1:$port"
[ "$backend" = postgres ] && export LATCHKEY_DATABASE_MAX_CONNECTIONS=16

"$bin" migrate
client_json="$("$bin" clients add --name bench --redirect-uri http://127.0.0.1:9/cb --first-party \
    --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
    --scope bench --json)"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$client_json"; }
echo 'violet hammer quiz 1234' | "$bin" users add --username bench --email bench@example.com --password-stdin >/dev/null

bench_serve
echo "backend: $backend; server pid $server_pid; RSS at idle: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"

args=(--issuer "http://127.0.0.1:$port" --client-id "$(field client_id)" --client-secret "$(field client_secret)"
    --redirect-uri http://127.0.0.1:9/cb --username bench --password 'violet hammer quiz 1234' --cc-scope bench
    --server-pid "$server_pid" --duration "${BENCH_DURATION:-10}" --warmup 2
    --concurrency "${BENCH_CONCURRENCY:-1,16,64}" --label "latchkey-$backend")
[ -n "${BENCH_SCENARIOS:-}" ] && args+=(--scenarios "$BENCH_SCENARIOS")
[ -n "${BENCH_JSON:-}" ] && args+=(--json "$BENCH_JSON")
"$driver" "${args[@]}"
echo "RSS after the run: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"
