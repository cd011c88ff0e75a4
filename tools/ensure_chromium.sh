#!/usr/bin/env bash
# Makes sure Debian's Chromium and its ChromeDriver are installed (/usr/bin/chromium,
# /usr/bin/chromedriver): the browser test of the server's page (tests/test_serving_page.py)
# drives them with Selenium. Idempotent and quiet: with both present it does nothing. It never
# downloads a browser of its own (Selenium Manager's, Playwright's): only Debian's packages.
#
#   bash tools/ensure_chromium.sh
#
# Needs root for apt-get (as root it runs apt-get itself; otherwise it says what to run).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

if [[ -x $CHROMIUM && -x $DRIVER ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM or $DRIVER is missing and there is no apt-get here:" \
        "install Chromium and a matching ChromeDriver at those paths" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "ensure_chromium: $CHROMIUM or $DRIVER is missing; as root, run:" >&2
    echo "    apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver" >&2
    echo "(or: sudo bash $0)" >&2
    exit 1
fi
echo "ensure_chromium: installing Debian's chromium and chromium-driver (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# debconf says it delays configuration when apt-utils is absent: noise, not an error
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
for binary in "$CHROMIUM" "$DRIVER"; do
    if [[ ! -x $binary ]]; then
        echo "ensure_chromium: apt-get installed chromium and chromium-driver, but $binary is not there" >&2
        exit 1
    fi
done
echo "ensure_chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium), $("$DRIVER" --version | cut -d' ' -f1-2)"
