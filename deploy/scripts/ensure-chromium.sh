#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is at /usr/bin/chromium: the
# console's browser tests (deploy/e2e/console_test.go) and `make screenshots`
# drive it with chromedp. When it is missing and this is a Debian machine
# where we are root (CI, the dev VM), installs the chromium package;
# otherwise says exactly what to install.
set -euo pipefail

[ -x /usr/bin/chromium ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium is required for the console's browser tests: install Debian's chromium package as root (apt-get install chromium), and retry" >&2
  exit 1
fi

echo "chromium is missing: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null

[ -x /usr/bin/chromium ] || { echo "the chromium package installed no /usr/bin/chromium" >&2; exit 1; }
