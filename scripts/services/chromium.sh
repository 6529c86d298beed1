# Sourced by scripts/test.sh: makes sure a headless Chromium is available for
# the Data Docs test (tests/it/checkpoints.rs, ignored by plain `cargo test`):
# Debian's `chromium`, installed when missing.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "installing chromium (for the Data Docs test)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
