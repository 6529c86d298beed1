# Sourced by scripts/test.sh: starts a real S3-protocol server on loopback
# for the S3 tests and exports what they read:
#   DP_TEST_S3_ENDPOINT   http://127.0.0.1:PORT (moto's server, which honours
#                         If-None-Match conditional puts)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION  throwaway test values
# moto[server] comes from PyPI into a venv under ~/.cache/dp-test/moto (made
# once; later runs reuse it). MinIO cannot be downloaded on these machines.
# Registers its cleanup in CLEANUPS (test.sh runs them on exit).

dp_s3_start() {
    local venv="${DP_TEST_CACHE:-$HOME/.cache/dp-test}/moto"
    local bin=""
    if [ -x "$venv/bin/moto_server" ]; then
        bin="$venv/bin/moto_server"
    elif command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1; then
        bin="$(command -v moto_server)"
    else
        echo "installing moto[server] into $venv (for the S3 tests)" >&2
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
            $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$venv"
        fi
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -q 'moto[server]' >&2
        bin="$venv/bin/moto_server"
    fi

    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    local log="${TMPDIR:-/tmp}/dp-test-moto-$port.log"
    "$bin" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    local pid=$!
    CLEANUPS+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f '$log'")
    local i
    for i in $(seq 1 100); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" >/dev/null 2>&1; then
            export DP_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
            export DP_TEST_MOTO_SERVER="$bin"
            export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-dp-test}"
            export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-dp-test-secret}"
            export AWS_REGION="${AWS_REGION:-us-east-1}"
            echo "S3 test server (moto) on $DP_TEST_S3_ENDPOINT" >&2
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "could not start moto_server on 127.0.0.1:$port; its log:" >&2
    cat "$log" >&2 || true
    return 1
}

if ! dp_s3_start; then
    if [ "${CI:-}" = "true" ]; then
        echo "error: the S3 test server is required when CI=true" >&2
        exit 1
    fi
    echo "warning: no S3 test server; the S3 tests will skip" >&2
fi
