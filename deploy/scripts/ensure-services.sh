#!/usr/bin/env bash
# Makes sure the local services the tests need answer: PostgreSQL on 127.0.0.1:5432
# and Redis on 127.0.0.1:6379. Starts them when this machine has them installed
# but stopped; otherwise says exactly what is missing.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c5 <&3 | grep -q PONG) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432: starting the local cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL is required on 127.0.0.1:5432 (trust auth for user postgres); start it and retry" >&2; exit 1; }
fi

if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "Redis is not answering on 127.0.0.1:6379: starting it" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  fi
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  redis_up || { echo "Redis is required on 127.0.0.1:6379 for the shared rate-limiter tests; start it and retry" >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up"
