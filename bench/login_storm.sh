#!/usr/bin/env bash
# A login storm against a release build: password sign-ins a second against the argon2id
# ceiling measured beside them (`latchkey config password-speed`, same settings, same machine,
# just before), and userinfo's latency while the storm runs (bench/login_storm.py says how).
#
#   bench/login_storm.sh              # SQLite + in-process state
#   bench/login_storm.sh postgres     # Postgres + Redis (server CPU then counts them too)
#
# Environment: BENCH_DURATION (s per phase, default 20), BENCH_STORM (browsers signing in at
# once, default 16), BENCH_USERINFO_RATE (requests a second beside the storm, default 200),
# BENCH_BIN (a Latchkey binary to measure instead of building this tree's), BENCH_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
case "$backend" in sqlite | postgres) ;; *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;; esac
source bench/lib.sh
bin="$(bench_bin)"
port="${BENCH_PORT:-18085}"
work="$(mktemp -d)"
trap bench_cleanup EXIT
bench_backend "$backend" storm
# The storm's browsers all come from 127.0.0.1: no limit of new browsers per address.
export LATCHKEY_ISSUER="http://127.0.0.1:$port" LATCHKEY_LOGIN_MAX_NEW_BROWSERS_PER_IP=100000000
redirect="http://127.0.0.1:9/cb"
password='violet hammer quiz 1234'
"$bin" migrate >/dev/null
client_json="$("$bin" clients add --name storm --redirect-uri "$redirect" --first-party --json)"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$client_json"; }
users=()
for i in $(seq 16); do
    echo "$password" | "$bin" users add --username "storm$i" --email "storm$i@example.com" --password-stdin >/dev/null
    users+=("storm$i")
done

bench_serve
pids="$server_pid"
[ "$backend" = postgres ] && pids="$pids,$(pgrep -o -x postgres),$(pgrep -o redis-server)"

speed="$("$bin" config password-speed --seconds 10 --json)"
ceiling="$(python3 -c "import json,sys; d = json.load(sys.stdin); print(d['checks_per_second'], d['ms_each'])" <<<"$speed")"
python3 bench/login_storm.py "http://127.0.0.1:$port" "$pids" "$(field client_id)" "$(field client_secret)" \
    "$redirect" "$(IFS=,; echo "${users[*]}")" "$password" $ceiling \
    "${BENCH_DURATION:-20}" "${BENCH_STORM:-16}" "${BENCH_USERINFO_RATE:-200}"
echo "RSS after: $(awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$server_pid/status")"
