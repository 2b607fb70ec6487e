# Sourced by scripts/test.sh: make sure the servers the tests use are running
# (CI machines normally start them; this covers one where they are stopped).
_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! _port_open 6379; then
  if command -v redis-server >/dev/null; then
    echo "== starting Redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log \
      || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 50); do _port_open 6379 && break; sleep 0.1; done
  fi
  _port_open 6379 || echo "warning: no Redis on 127.0.0.1:6379; tests of the Redis backends will fail" >&2
fi

if ! _port_open 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "== starting PostgreSQL on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 100); do _port_open 5432 && break; sleep 0.1; done
  fi
  _port_open 5432 || echo "warning: no PostgreSQL on 127.0.0.1:5432; tests of the PostgreSQL store will fail" >&2
fi
