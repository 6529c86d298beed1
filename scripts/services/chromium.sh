# Sourced by scripts/test.sh: makes sure a headless Chromium is installed for
# the docs-site tests (tests/it/docs.rs drives Debian's `chromium` with
# --dump-dom). Installed with apt-get only when missing; nothing to start.

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "installing chromium (for the docs-site tests)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
