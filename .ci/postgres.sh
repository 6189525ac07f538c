# shellcheck shell=bash
# Sourced by .ci/run (and usable by hand: `. .ci/postgres.sh`): a throwaway PostgreSQL
# server on loopback for the PostgreSQL state store and worker tests. Exports
# CONNECTOR_TEST_POSTGRES=postgresql://postgres@127.0.0.1:PORT/connector_test.
#
# Idempotent and fast: nothing happens when CONNECTOR_TEST_POSTGRES is already set, or when
# the server this script started earlier (its directory in $CONNECTOR_PG_DIR) still
# answers; the Debian package is installed only when no PostgreSQL binaries are present.
# The server is a private cluster (initdb into a temporary directory, trust auth, loopback
# and a Unix socket in that directory only, fsync off: test data), never the system's own.
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
# that the Debian package creates. A server started here is stopped when the shell exits.

_connector_pg_bin() {
    find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | sort -V | tail -n 1 | xargs -r dirname
}

_connector_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_connector_pg_start() {
    local bin dir port
    bin="$(_connector_pg_bin)"
    if [ -z "$bin" ] && ! command -v initdb >/dev/null 2>&1; then
        echo "== installing PostgreSQL (Debian package)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin="$(_connector_pg_bin)"
    fi
    if [ -z "$bin" ]; then
        bin="$(dirname "$(command -v initdb)")"
    fi

    dir="${CONNECTOR_PG_DIR:-}"
    if [ -n "$dir" ] && [ -f "$dir/port" ] \
        && _connector_pg_as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        port="$(cat "$dir/port")"
    else
        dir="$(mktemp -d /tmp/connector-pg.XXXXXX)"
        chmod 755 "$dir"
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$dir"
        fi
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
        _connector_pg_as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
            --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; return 1; }
        _connector_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
            start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
        _connector_pg_as_owner sh -c "echo $port > '$dir/port'"
        export CONNECTOR_PG_DIR="$dir"
        # shellcheck disable=SC2064
        trap "_connector_pg_as_owner '$bin/pg_ctl' -D '$dir/data' -m fast stop >/dev/null 2>&1; rm -rf '$dir'" EXIT
    fi
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc \
        "SELECT 1 FROM pg_database WHERE datname = 'connector_test'" | grep -q 1 \
        || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres connector_test
    export CONNECTOR_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$port/connector_test"
    echo "== PostgreSQL for the tests: $CONNECTOR_TEST_POSTGRES"
}

if [ -z "${CONNECTOR_TEST_POSTGRES:-}" ]; then
    _connector_pg_start
fi
