# Sourced by the bench scripts: the binary to measure, a fresh database on the chosen backend,
# and a Latchkey server on it. A script sets `work` (a temporary directory) and `port` first,
# and traps EXIT with bench_cleanup.

# The binary: $BENCH_BIN, else this tree's release build.
bench_bin() {
    if [ -n "${BENCH_BIN:-}" ]; then
        echo "$BENCH_BIN"
        return
    fi
    cargo build --release --quiet
    echo "${CARGO_TARGET_DIR:-$PWD/target}/release/latchkey"
}

# Settings for a fresh database on backend $1 (sqlite, or postgres with Redis: a new database
# named after $2, dropped by bench_cleanup, and a Redis key prefix of its own), listening on
# $port, with no rate limits.
bench_backend() {
    export LATCHKEY_DATA_DIR="$work/data" LATCHKEY_KEYS_DIR="$work/keys" LATCHKEY_LISTEN="127.0.0.1:$port"
    export LATCHKEY_RATE_LIMIT_PER_SECOND=0 RUST_LOG=warn
    db=""
    if [ "$1" = postgres ]; then
        db="latchkey_$2_$(date +%s)_$$"
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
        export LATCHKEY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
        export LATCHKEY_EPHEMERAL_URL="redis://127.0.0.1:6379" LATCHKEY_EPHEMERAL_PREFIX="latchkey-bench-$db:"
    fi
}

# Waits (up to 20 s) until $1 answers.
bench_wait() {
    for _ in $(seq 200); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the server did not come up: $1" >&2
    return 1
}

# Starts "$bin" serve (its output in $work/latchkey.log) and waits until it is ready; sets
# server_pid.
bench_serve() {
    env ${BENCH_LD_PRELOAD:+LD_PRELOAD="$BENCH_LD_PRELOAD"} "$bin" serve >"$work/latchkey.log" 2>&1 &
    server_pid=$!
    bench_wait "http://127.0.0.1:$port/readyz"
}

bench_stop() {
    if [ -n "${server_pid:-}" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

bench_cleanup() {
    bench_stop
    if [ -n "${db:-}" ]; then
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    fi
    rm -rf "$work"
}
