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
