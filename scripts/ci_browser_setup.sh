#!/usr/bin/env bash
# What CI needs for the web UI's browser tests (tests/app/test_app_browser.py, marker `browser`):
# Debian's chromium at /usr/bin/chromium, driven by the pinned Python package playwright
# (requirements.txt). Playwright's own browser download (`playwright install`) is never used:
# the tests launch the system Chromium with executable_path.
#
# Usage (as root, or with sudo available), before `make test`:
#     scripts/ci_browser_setup.sh
#     export MOTIONGPT_REQUIRE_BROWSER=1   # then a missing browser fails the tests instead of skipping them
#
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail

CHROMIUM=${MOTIONGPT_CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
    echo "ci_browser_setup: $CHROMIUM present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ci_browser_setup: $CHROMIUM is missing and apt-get is not available: install Chromium" \
         "by other means and set MOTIONGPT_CHROMIUM to its path" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ci_browser_setup: installing chromium needs root (or sudo)" >&2
        exit 1
    fi
fi

echo "ci_browser_setup: installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "ci_browser_setup: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "ci_browser_setup: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM installed")"
