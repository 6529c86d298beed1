# Sourced by scripts/test.sh: makes sure a headless Chromium is installed for
# the browser tests (tests/it/docs.rs: the docs site; tests/it/checkpoints.rs:
# Data Docs), which are ignored by a plain `cargo test`. Debian's `chromium`,
# installed with apt-get only when missing; nothing to start.

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "installing chromium (for the docs-site and Data Docs tests)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
