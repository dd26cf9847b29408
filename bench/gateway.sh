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
source bench/lib.sh
bin="$(bench_bin)"
work="$(mktemp -d)"
port="${BENCH_PORT:-18090}"
trap bench_cleanup EXIT
bench_backend "$backend" gwbench
cat >"$work/latchkey.toml" <<TOML
[gateway]
enabled = true
cookie_domain = "localhost"

[[gateway.rules]]
hosts = ["*.bench.localhost"]
policy = "one_factor"
TOML
export LATCHKEY_CONFIG="$work/latchkey.toml"
export LATCHKEY_ISSUER="http://localhost:$port" LATCHKEY_TRUSTED_PROXIES=127.0.0.1

"$bin" migrate
echo 'violet hammer quiz 1234' | "$bin" users add --username bench --email bench@example.com --password-stdin >/dev/null
bench_serve
echo "backend: $backend; server pid $server_pid; RSS at idle: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"
for c in ${BENCH_CONCURRENCY:-1 16 64}; do
    python3 bench/gateway_load.py "http://127.0.0.1:$port" "$server_pid" "${BENCH_DURATION:-10}" "$c"
done
echo "RSS after: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server_pid/status)"
