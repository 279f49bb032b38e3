#!/usr/bin/env bash
# Makes sure redis-server is installed (the Redis tests start their own servers from it, and stop
# them by pid) and that the shared one on 127.0.0.1:6379 answers. `npm test` runs this first
# (pretest), so the README's test command works on a machine without Redis.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server present: $(redis-server --version)"
else
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

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
fi

# Some tests use the shared server on 127.0.0.1:6379 (as on the CI machine, where it is started
# before the session); start one if nothing answers there.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "no Redis on 127.0.0.1:6379: starting one (no persistence)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
