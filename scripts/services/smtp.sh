# Sourced by scripts/test.sh: makes aiosmtpd (a real SMTP server, from PyPI)
# available for the email-alert test, which starts it on a free loopback
# port itself. Exports:
#   DP_TEST_AIOSMTPD_PYTHON   the python of a venv with aiosmtpd installed
# The venv lives under ~/.cache/dp-test/aiosmtpd (made once; reused).

dp_smtp_prepare() {
    local venv="${DP_TEST_CACHE:-$HOME/.cache/dp-test}/aiosmtpd"
    if ! "$venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
        echo "installing aiosmtpd into $venv (for the email alert test)" >&2
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
            $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$venv"
        fi
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -q aiosmtpd >&2
    fi
    export DP_TEST_AIOSMTPD_PYTHON="$venv/bin/python"
}

dp_smtp_prepare
