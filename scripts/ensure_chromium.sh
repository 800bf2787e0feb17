#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on the PATH; install Debian's `chromium` when absent.
# A no-op when one is already there. Non-interactive: safe in CI as root with no stdin.
# Prints the browser's path on stdout (progress goes to stderr).
set -euo pipefail

for candidate in chromium chromium-browser google-chrome; do
    if path="$(command -v "$candidate")"; then
        echo "$path"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null; then
    echo "Chromium is required and apt-get is not available: install chromium by hand." >&2
    exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
        echo "Chromium is required: run 'apt-get install -y chromium' as root." >&2
        exit 1
    fi
    sudo=(sudo -n)
fi

echo "Installing Debian's chromium (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
# Other apt users (unattended upgrades) hold the lock for a while: wait for it, do not fail.
apt_options=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
"${sudo[@]}" apt-get "${apt_options[@]}" update -qq </dev/null >&2
"${sudo[@]}" apt-get "${apt_options[@]}" install -y -qq --no-install-recommends chromium \
    </dev/null >&2

command -v chromium
