#!/usr/bin/env bash
# Make sure the services the tests talk to are up: PostgreSQL (127.0.0.1:5432, a user that may
# create databases), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672, guest/guest). Each one
# that does not answer is started with the machine's own command when that exists (Debian's
# packages, as on CI), else the script says what is missing and fails. SeaweedFS, the API and
# worker processes and Chromium are started by the tests themselves.
set -euo pipefail

answers() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

wait_for() {  # name port
  for _ in $(seq 1 60); do
    answers 127.0.0.1 "$2" && return 0
    sleep 1
  done
  echo "$1 did not come up on 127.0.0.1:$2" >&2
  return 1
}

ensure() {  # name port command...
  local name=$1 port=$2
  shift 2
  if answers 127.0.0.1 "$port"; then
    echo "$name: up on 127.0.0.1:$port"
    return 0
  fi
  if ! command -v "$1" > /dev/null; then
    echo "$name is not running on 127.0.0.1:$port and '$1' is not installed: start $name first" >&2
    return 1
  fi
  echo "$name: not answering on 127.0.0.1:$port, starting it"
  "$@" > /dev/null 2>&1 || true
  wait_for "$name" "$port"
  echo "$name: up on 127.0.0.1:$port"
}

ensure PostgreSQL 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start'
ensure Redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
ensure RabbitMQ 5672 rabbitmq-server -detached
