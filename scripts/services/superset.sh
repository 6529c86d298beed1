# Sourced by scripts/test.sh: a real Apache Superset for the dashboards test
# (tests/it/superset.rs), ignored by a plain `cargo test`.
#
# - Installs apache-superset (the version docker-compose.yml pins) into a
#   venv under ~/.cache/dp-test/superset-<version>, once; reused afterwards.
#   `rich`, `cachetools` and `flask-caching==2.3.1` are missing from its
#   declared requirements and it does not start without them; psycopg2 is
#   its PostgreSQL driver.
# - A SQLite metadata database in a temp dir: `superset db upgrade`,
#   `superset fab create-admin`, `superset init` (each run starts clean).
# - Starts it on a free loopback port and exports DP_TEST_SUPERSET_URL,
#   DP_TEST_SUPERSET_USERNAME and DP_TEST_SUPERSET_PASSWORD (anonymous
#   visitors may view every dashboard, for the headless browser); stopped and
#   removed when test.sh exits (CLEANUPS).
#
# Set DP_TEST_SUPERSET_URL yourself to reuse a running Superset instead.

DP_SUPERSET_VERSION="${DP_SUPERSET_VERSION:-6.1.0}"

dp_superset_install() {
    local venv="$1"
    if "$venv/bin/python" -c 'import superset, psycopg2, rich, cachetools, flask_caching' >/dev/null 2>&1; then
        return 0
    fi
    echo "installing apache-superset==$DP_SUPERSET_VERSION into $venv (for the dashboards test; a few minutes, once)" >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -q \
        "apache-superset==$DP_SUPERSET_VERSION" rich cachetools 'flask-caching==2.3.1' \
        psycopg2-binary >&2
}

dp_superset_start() {
    local venv="${DP_TEST_CACHE:-$HOME/.cache/dp-test}/superset-$DP_SUPERSET_VERSION"
    dp_superset_install "$venv" || return 1
    local dir port
    dir="$(mktemp -d /tmp/dp-test-superset.XXXXXX)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cat >"$dir/superset_config.py" <<PY
SECRET_KEY = "dp-test-only-secret-key-not-for-production"
SQLALCHEMY_DATABASE_URI = "sqlite:///$dir/superset.db"
WTF_CSRF_ENABLED = True
TALISMAN_ENABLED = False
PREVENT_UNSAFE_DB_CONNECTIONS = False
FEATURE_FLAGS = {"DASHBOARD_RBAC": False}
# Loopback-only and thrown away after the run: anonymous visitors may view
# (Gamma's permissions plus every datasource, granted below), so the
# headless browser opens dashboards without a login form. Imports stay
# admin-only: they authenticate with the token of dp superset push.
AUTH_ROLE_PUBLIC = "Public"
PUBLIC_ROLE_LIKE = "Gamma"
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
PY
    (
        export SUPERSET_CONFIG_PATH="$dir/superset_config.py" FLASK_APP=superset SUPERSET_LOAD_EXAMPLES=no
        "$venv/bin/superset" db upgrade &&
        "$venv/bin/superset" fab create-admin --username admin --firstname dp --lastname test \
            --email admin@example.com --password admin &&
        "$venv/bin/superset" init &&
        "$venv/bin/python" - <<'PY'
from superset.app import create_app

with create_app().app_context():
    from superset import db, security_manager as sm

    public = sm.find_role("Public")
    for name in ("all_datasource_access", "all_database_access"):
        sm.add_permission_role(public, sm.find_permission_view_menu(name, name))
    db.session.commit()
PY
    ) >"$dir/init.log" 2>&1 || { tail -50 "$dir/init.log" >&2; return 1; }
    SUPERSET_CONFIG_PATH="$dir/superset_config.py" FLASK_APP=superset \
        setsid "$venv/bin/superset" run -h 127.0.0.1 -p "$port" --with-threads >"$dir/server.log" 2>&1 &
    local pid=$!
    CLEANUPS+=("kill -- -$pid 2>/dev/null; rm -rf '$dir'")
    local i up=no
    for i in $(seq 1 300); do
        if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/health', timeout=2)" >/dev/null 2>&1; then up=yes; break; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 1
    done
    [ "$up" = yes ] || { echo "Superset did not start:" >&2; tail -50 "$dir/server.log" >&2; return 1; }
    export DP_TEST_SUPERSET_URL="http://127.0.0.1:$port" DP_TEST_SUPERSET_USERNAME=admin DP_TEST_SUPERSET_PASSWORD=admin
    echo "Superset $DP_SUPERSET_VERSION on 127.0.0.1:$port (metadata in $dir)" >&2
}

if [ -z "${DP_TEST_SUPERSET_URL:-}" ]; then
    dp_superset_start
fi
