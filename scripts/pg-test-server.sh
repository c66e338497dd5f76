#!/usr/bin/env bash
# Starts (start), shows the log of (log) or stops (stop) a throw-away
# PostgreSQL server for the test suite from Debian's postgresql package, on 127.0.0.1:${OSTEO_PG_PORT:-55432},
# with its data in a temporary folder. Prints the admin URL for
# OSTEO_TEST_POSTGRES_URL on start.
set -euo pipefail
port="${OSTEO_PG_PORT:-55432}"
dir="${OSTEO_PG_DIR:-/tmp/osteo-test-pg-$port}"
bin=$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1)")
as_owner() {
    # PostgreSQL refuses to run as root: use the postgres account then.
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-start}" in
start)
    if [ ! -s "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
        as_owner "$bin/initdb" -D "$dir" -U osteo --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir" -w -l "$dir/server.log" \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c log_lock_waits=on -c deadlock_timeout=1s -c log_min_error_statement=error" start >/dev/null
    fi
    echo "postgres://osteo@127.0.0.1:$port/postgres"
    ;;
log)
    tail -n "${2:-60}" "$dir/server.log" 2>/dev/null || true
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|log [LINES]|stop" >&2
    exit 2
    ;;
esac
