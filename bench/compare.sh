#!/usr/bin/env bash
# Latchkey beside node-oidc-provider, in the same sitting, with the same load driver
# (../shared/tools/oidc-bench) and the same scenarios: one table of server CPU per operation,
# ops/s, p99 and RSS per scenario and concurrency, with Latchkey's ratio to node per row.
#
#   bench/compare.sh              # Latchkey on SQLite + in-process state; node with its Map
#   bench/compare.sh postgres     # Latchkey on Postgres + Redis; node with its Redis adapter
#   bench/compare.sh both         # one after the other
#
# Server CPU counts every process that serves the requests: Latchkey (or node), and for the
# postgres backend all of Postgres and the Redis server (shared with whatever else runs here:
# watch the oth% column of the raw output).
#
# Environment: BENCH_DURATION (s, default 10), BENCH_CONCURRENCY (default 1,16,64),
# BENCH_SCENARIOS (default the driver's protocol scenarios), BENCH_ALG (RS256 or ES256 for ID
# and access tokens, default RS256), BENCH_REPEAT (default 1), BENCH_OUT (a directory for the
# raw JSON; default a temporary one), BENCH_PEER_DIR (an installed copy of peer-node to reuse),
# BENCH_BIN (a Latchkey binary to measure instead of building this tree's), BENCH_LD_PRELOAD (an
# allocator library to run Latchkey with, e.g. libmimalloc.so.2), BENCH_NODE=0 (Latchkey alone),
# BENCH_DRIVER (an oidc-bench binary to use instead of building one),
# BENCH_AT_FORMAT (jwt or opaque: Latchkey's access tokens, default jwt; node's peer issues opaque ones
# in the code flow and JWTs for client_credentials).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
backend="${1:-sqlite}"
if [ "$backend" = both ]; then
    "$0" sqlite && exec "$0" postgres
fi
case "$backend" in sqlite | postgres) ;; *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;; esac
alg="${BENCH_ALG:-RS256}"
scenarios="${BENCH_SCENARIOS:-client_credentials,userinfo,introspection,code,refresh}"
target="${CARGO_TARGET_DIR:-$root/target}"
driver_dir="$root/../shared/tools/oidc-bench"
[ -d "$driver_dir" ] || driver_dir="/work/shared/tools/oidc-bench"
peer_src="$(dirname "$driver_dir")/peer-node"

source bench/lib.sh
bin="$(bench_bin)"
driver="${BENCH_DRIVER:-}"
if [ -z "$driver" ]; then
    (cd "$driver_dir" && CARGO_TARGET_DIR="$target" cargo build --release --quiet)
    driver="$target/release/oidc-bench"
fi

work="$(mktemp -d)"
out="${BENCH_OUT:-$work/out}"
mkdir -p "$out"
peer="${BENCH_PEER_DIR:-}"
if [ -z "$peer" ]; then
    peer="$work/peer"
    cp -r "$peer_src/." "$peer" && chmod -R u+w "$peer"
    (cd "$peer" && npm ci --no-audit --no-fund --silent >/dev/null)
fi

port="${BENCH_PORT:-18080}"
redirect="http://127.0.0.1:9/cb"
trap bench_cleanup EXIT
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Runs the driver against one server. $1 label, $2 issuer, $3 client id, $4 secret, $5 user,
# $6 password, $7 the pids to count (comma-separated); writes $out/$1.json.
drive() {
    local args=(--issuer "$2" --client-id "$3" --client-secret "$4" --redirect-uri "$redirect"
        --username "$5" --password "$6" --server-pid "$7" --scenarios "$scenarios"
        --duration "${BENCH_DURATION:-10}" --warmup 2 --concurrency "${BENCH_CONCURRENCY:-1,16,64}"
        --repeat "${BENCH_REPEAT:-1}" --label "$1" --json "$out/$1.json")
    [ -n "${cc_scope:-}" ] && args+=(--cc-scope "$cc_scope")
    "$driver" "${args[@]}" | tee "$out/$1.txt"
}

# --- Latchkey ------------------------------------------------------------------------------
bench_backend "$backend" compare
export LATCHKEY_ISSUER="http://127.0.0.1:$port"
"$bin" migrate >/dev/null
client_json="$("$bin" clients add --name bench --redirect-uri "$redirect" --first-party \
    --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
    --scope bench --id-token-alg "$alg" --access-token-format "${BENCH_AT_FORMAT:-jwt}" --json)"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$client_json"; }
echo 'violet hammer quiz 1234' | "$bin" users add --username bench --email bench@example.com --password-stdin >/dev/null

bench_serve
pids="$server_pid"
if [ "$backend" = postgres ]; then
    # All of Postgres (the postmaster's process tree: the backends of Latchkey's connections,
    # opened as they are needed, and the WAL writer and checkpointer that its commits keep busy)
    # and the Redis server.
    pids="$pids,$(pgrep -o -x postgres),$(pgrep -o redis-server)"
fi
idle_latchkey="$(rss_kb "$server_pid")"
cc_scope=bench drive "latchkey-$backend" "http://127.0.0.1:$port" "$(field client_id)" \
    "$(field client_secret)" bench 'violet hammer quiz 1234' "$pids"
after_latchkey="$(rss_kb "$server_pid")"
bench_stop

# --- node-oidc-provider --------------------------------------------------------------------
idle_node=0 after_node=0
if [ "${BENCH_NODE:-1}" = 1 ]; then
node_port=$((port + 1))
node_env=(PORT="$node_port" ISSUER="http://127.0.0.1:$node_port" REDIRECT_URI="$redirect"
    ID_TOKEN_ALG="$alg" CC_JWT_ALG="$alg" CC_JWT=1)
if [ "$backend" = postgres ]; then
    node_env+=(ADAPTER=redis REDIS_URL="redis://127.0.0.1:6379/3")
fi
env "${node_env[@]}" node "$peer/server.mjs" >"$work/node.log" 2>&1 &
server_pid=$!
bench_wait "http://127.0.0.1:$node_port/.well-known/openid-configuration"
pids="$server_pid"
[ "$backend" = postgres ] && pids="$pids,$(pgrep -o redis-server)"
idle_node="$(rss_kb "$server_pid")"
cc_scope=api:read drive "node-$backend" "http://127.0.0.1:$node_port" bench-client bench-secret demo demo "$pids"
after_node="$(rss_kb "$server_pid")"
bench_stop
fi

# --- The table -----------------------------------------------------------------------------
python3 - "$out/latchkey-$backend.json" "$out/node-$backend.json" "$backend" "$alg" \
    "$idle_latchkey" "$after_latchkey" "$idle_node" "$after_node" <<'EOF'
import json, sys
import os
lk = json.load(open(sys.argv[1]))
nd = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {"results": []}
backend, alg = sys.argv[3], sys.argv[4]
idle_lk, after_lk, idle_nd, after_nd = (int(x) / 1024 for x in sys.argv[5:9])

def best(doc):
    """One row per (scenario, concurrency): of repeats, the one with the least CPU per op."""
    rows = {}
    for r in doc["results"]:
        if not r["ops_per_s"] or r["server_cpu_pct_of_core"] is None:
            continue
        r["cpu_ms"] = r["server_cpu_pct_of_core"] / 100 / r["ops_per_s"] * 1000
        key = (r["scenario"], r["concurrency"])
        if key not in rows or r["cpu_ms"] < rows[key]["cpu_ms"]:
            rows[key] = r
    return rows

a, b = best(lk), best(nd)
def ratio(x, y):
    return f"{x / y:.2f}" if y else "-"
print()
print(f"Latchkey vs node-oidc-provider, backend {backend}, {alg}: server CPU ms per operation (ratio "
      "Latchkey / node), ops/s, p99 ms, peak RSS MB, errors")
head = ("scenario", "conc", "cpu ms", "node", "ratio", "ops/s", "node", "p99", "node", "rss", "node", "err")
fmt = "{:<19} {:>4} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6} {:>5} {:>5} {:>5}"
print(fmt.format(*head))
for key in sorted(a, key=lambda k: (list(dict.fromkeys(s for s, _ in a)).index(k[0]), k[1])):
    x, y = a[key], b.get(key)
    print(fmt.format(
        key[0], key[1], f"{x['cpu_ms']:.3f}", f"{y['cpu_ms']:.3f}" if y else "-",
        ratio(x["cpu_ms"], y["cpu_ms"]) if y else "-",
        f"{x['ops_per_s']:.0f}", f"{y['ops_per_s']:.0f}" if y else "-",
        f"{x['p99_ms']:.1f}", f"{y['p99_ms']:.1f}" if y else "-",
        f"{x['server_rss_peak_mb']:.0f}", f"{y['server_rss_peak_mb']:.0f}" if y else "-",
        f"{x['errors']}/{y['errors'] if y else '-'}"))
print(f"RSS MB idle / after the run: Latchkey {idle_lk:.1f} / {after_lk:.1f}, node {idle_nd:.1f} / {after_nd:.1f}"
      f" (ratio after the run {ratio(after_lk, after_nd)})" if b else f"RSS MB idle / after the run: Latchkey {idle_lk:.1f} / {after_lk:.1f}")
EOF
