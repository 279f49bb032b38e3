#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed at /usr/bin/chromium, for the dashboard test
# (test/dashboard.test.ts drives it with playwright-core; `npx playwright install` downloads are not
# used). `npm test` runs this first (pretest); on a machine without it, it installs the Debian package.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "chromium missing: installing the Debian package chromium"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
[ -x "$CHROMIUM" ] || {
  echo "$CHROMIUM is still missing after apt-get install chromium" >&2
  exit 1
}
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
