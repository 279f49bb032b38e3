#!/usr/bin/env bash
# Makes sure redis-server is installed, for the cache's Redis tests (test/cache-redis.test.ts start
# their own servers). CI calls this before the tests; on a machine without it, it installs the
# Debian package. It does not start a server.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server present: $(redis-server --version)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "redis-server missing: installing the Debian package redis-server"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server
# The package starts a service on 6379 on some systems; the tests start their own servers.
command -v redis-server >/dev/null 2>&1 || {
  echo "redis-server is still missing after apt-get install" >&2
  exit 1
}
echo "redis-server installed: $(redis-server --version)"
