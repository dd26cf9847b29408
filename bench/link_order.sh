#!/usr/bin/env bash
# Records the order release builds lay out the binary's code in (.cargo/link-order.txt, read by
# build.rs): runs a release build under valgrind's callgrind through start-up, then the load
# driver's protocol scenarios (conc 2, a few seconds each; an RS256 client with JWT access tokens
# and an ES256 one with opaque tokens), on SQLite and, when it answers, on Postgres + Redis.
# The file lists the functions requests ran, hottest first, then those only start-up ran.
#
#   bench/link_order.sh           # rewrite .cargo/link-order.txt; then rebuild and measure RSS
#   bench/link_order.sh --check   # how many of the listed functions the release build still has
#
# Redo it after a change of toolchain or dependencies (the listed names carry their crates'
# hashes) or of the hot paths. Environment: BENCH_BIN (the release binary to run), BENCH_DRIVER
# (an oidc-bench binary), BENCH_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
order="$root/.cargo/link-order.txt"
source bench/lib.sh
bin="$(bench_bin)"

# Prints how many of the names in $order the binary $bin defines.
check() {
    python3 - "$bin" "$order" <<'EOF'
import subprocess, sys
binary, order = sys.argv[1:3]
nm = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
defined = {line.split()[-1] for line in nm.stdout.splitlines()}
listed = [line.strip() for line in open(order) if line.strip()]
found = sum(name in defined for name in listed)
print(f"{found} of the {len(listed)} functions in {order} are in {binary} ({100 * found // max(len(listed), 1)} %)")
EOF
}
if [ "${1:-}" = --check ]; then
    check
    exit
fi
command -v valgrind >/dev/null || { echo "valgrind is needed (Debian package valgrind)" >&2; exit 1; }

driver="${BENCH_DRIVER:-}"
if [ -z "$driver" ]; then
    driver_dir="$root/../shared/tools/oidc-bench"
    [ -d "$driver_dir" ] || driver_dir="/work/shared/tools/oidc-bench"
    (cd "$driver_dir" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" cargo build --release --quiet)
    driver="${CARGO_TARGET_DIR:-$root/target}/release/oidc-bench"
fi
port="${BENCH_PORT:-18090}"
redirect="http://127.0.0.1:9/cb"
password='violet hammer quiz 1234'
profiles="$(mktemp -d)"
trap 'bench_cleanup; rm -rf "$profiles"' EXIT

# One run on backend $1: the start-up's profile in $profiles/$1.out.1, the requests' in $1.out.
record() {
    work="$(mktemp -d)"
    bench_backend "$1" order
    export LATCHKEY_ISSUER="http://127.0.0.1:$port"
    "$bin" migrate >/dev/null
    echo "$password" | "$bin" users add --username bench --email bench@example.com --password-stdin >/dev/null
    local clients=()
    for alg_format in RS256:jwt ES256:opaque; do
        clients+=("$("$bin" clients add --name "bench $alg_format" --redirect-uri "$redirect" --first-party \
            --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
            --scope bench --id-token-alg "${alg_format%:*}" --access-token-format "${alg_format#*:}" --json)")
    done
    valgrind --tool=callgrind --callgrind-out-file="$profiles/$1.out" --dump-instr=no --demangle=no \
        --compress-strings=no --compress-pos=no "$bin" serve >"$work/latchkey.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 600); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.5
    done
    sleep 2
    callgrind_control --dump "$server_pid" >/dev/null 2>&1
    for client in "${clients[@]}"; do
        field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$client"; }
        "$driver" --issuer "http://127.0.0.1:$port" --client-id "$(field client_id)" \
            --client-secret "$(field client_secret)" --redirect-uri "$redirect" --username bench \
            --password "$password" --cc-scope bench --concurrency 2 --duration 3 --warmup 0 --timeout 60 \
            --scenarios discovery,jwks,client_credentials,code,refresh,userinfo,introspection,code_userinfo >/dev/null
    done
    kill -INT "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    bench_cleanup
    db=""
}

record sqlite
runs=sqlite
if psql -q -h 127.0.0.1 -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1 &&
    redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    record postgres
    runs="$runs postgres"
else
    echo "Postgres or Redis not answering on 127.0.0.1: SQLite only" >&2
fi

python3 - "$bin" "$order" "$profiles" $runs <<'EOF'
import collections, re, subprocess, sys
binary, order, profiles, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def self_cost(paths):
    """Instructions each of the binary's functions executed itself (callgrind's self cost)."""
    cost = collections.Counter()
    for path in paths:
        ob = fn = None
        call_cost_next = False
        for line in open(path, errors="replace"):
            if line[:1].isdigit() or line[:1] in "+-*":
                if call_cost_next:  # the line after `calls=` is the callee's inclusive cost
                    call_cost_next = False
                elif ob == binary and fn:
                    fields = line.split()
                    cost[fn] += int(fields[1]) if len(fields) > 1 else 0
            elif line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("fn="):
                fn = re.sub(r"'\d+$", "", line[3:].strip())  # 'N marks a recursion depth
                if fn.startswith(("0x", "(")):  # an address without a symbol, "(below main)"
                    fn = None
            elif line.startswith("calls="):
                call_cost_next = True
    return cost

start = self_cost(f"{profiles}/{r}.out.1" for r in runs)
requests = self_cost(f"{profiles}/{r}.out" for r in runs)
# Requests' functions first, those start-up also ran last among them, then start-up's alone:
# an idle node has touched the last two groups, a busy one the first two, each contiguous.
hot = [n for n, _ in requests.most_common()]
names = [n for n in hot if n not in start] + [n for n in hot if n in start]
names += [n for n, _ in start.most_common() if n not in requests]

nm = subprocess.run(["nm", "--defined-only", "--print-size", binary], capture_output=True, text=True, check=True)
size = {}
for line in nm.stdout.splitlines():
    fields = line.split()
    if len(fields) == 4:
        size[fields[3]] = max(size.get(fields[3], 0), int(fields[1], 16))
with open(order, "w") as out:
    out.writelines(n + "\n" for n in names)
megabytes = sum(size.get(n, 0) for n in names) / 1e6
print(f"{len(names)} functions ({megabytes:.1f} MB of code) written to {order}; rebuild to use them")
EOF
