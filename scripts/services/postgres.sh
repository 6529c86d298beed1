# Sourced by scripts/test.sh: starts a throwaway PostgreSQL 15 cluster on
# loopback for the Postgres tests and exports DP_TEST_PG_* for them.
#
# - Installs Debian's postgresql-15 when its binaries are missing (without
#   letting the package create and start its own cluster).
# - initdb in a temp dir, trust auth, 127.0.0.1 only, a free port, fsync off.
#   CI runs as root and PostgreSQL refuses to, so the cluster then belongs to
#   the `postgres` user.
# - Stopped and removed when test.sh exits (CLEANUPS).
#
# Set DP_TEST_PG_PORT yourself to reuse a running server instead.

if [ -z "${DP_TEST_PG_PORT:-}" ]; then
    PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
    if [ ! -x "$PG_BIN/initdb" ]; then
        echo "installing PostgreSQL 15 (for the Postgres tests)" >&2
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/dp-test.conf >/dev/null
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 >/dev/null
    fi
    pg_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    pg_dir="$(mktemp -d /tmp/dp-test-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$pg_dir"
        as_pg() { runuser -u postgres -- "$@"; }
    else
        as_pg() { "$@"; }
    fi
    as_pg "$PG_BIN/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$pg_dir/initdb.log" 2>&1 \
        || { cat "$pg_dir/initdb.log" >&2; return 1; }
    as_pg "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
        -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$pg_dir/server.log" >&2; return 1; }
    CLEANUPS+=("as_pg '$PG_BIN/pg_ctl' -D '$pg_dir/data' -m immediate stop >/dev/null 2>&1; rm -rf '$pg_dir'")
    export DP_TEST_PG_HOST=127.0.0.1 DP_TEST_PG_PORT="$pg_port" DP_TEST_PG_USER=postgres
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (data in $pg_dir)" >&2
fi
