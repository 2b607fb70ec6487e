"""Celery on the peer workloads: one `celery worker` with a prefork pool of N processes, Redis broker and backend.

The Redis database (MAOS_PEERS_REDIS_URL, default redis://127.0.0.1:6379/7)
is the benchmark's own: it is flushed before the worker starts and after it
stops. Many tasks go out as a `group`, the fan-in as a `chord` (the group,
then the reducer over its results), a round trip as `delay(...).get()`;
results are collected with a 5 ms poll interval (see POLL_S).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.peers import common

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
# Results are polled every 5 ms: Celery's default 0.5 s poll for a group's results would round every group's
# time up to half-seconds and measure the poll, not Celery (a single result arrives by pub/sub either way).
POLL_S = 0.005
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0


class CeleryCluster:
    """The workloads as Celery tasks of benchmarks.peers.celery_app."""

    def __init__(self, tasks: Any) -> None:
        from celery import chord, group

        self._tasks = tasks
        self._group = group
        self._chord = chord

    def noop_many(self, n: int) -> list[int]:
        result = self._group(self._tasks.noop.s(i) for i in range(n)).apply_async()
        return list(result.get(timeout=common.TIMEOUT_S, interval=POLL_S))

    def noop_one(self, x: int) -> int:
        return int(self._tasks.noop.delay(x).get(timeout=common.TIMEOUT_S, interval=POLL_S))

    def fan_in(self, width: int) -> int:
        header = [self._tasks.noop.s(i) for i in range(width)]
        return int(
            self._chord(header, self._tasks.total.s()).apply_async().get(timeout=common.TIMEOUT_S, interval=POLL_S)
        )

    def cpu_many(self, tasks: int, iterations: int) -> list[int]:
        result = self._group(self._tasks.burn.s(iterations) for _ in range(tasks)).apply_async()
        return list(result.get(timeout=common.TIMEOUT_S, interval=POLL_S))


def _redis(url: str) -> Any:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConnectionError(
            f"Redis at {url} is not reachable ({exc}); start redis-server or pass --redis-url"
        ) from exc
    return client


def _wait_ready(app: Any, worker: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"celery worker exited with {worker.returncode}: {' '.join(tail)}")
        if app.control.ping(destination=[name], timeout=0.5):
            return
    raise TimeoutError(f"celery worker not ready after {READY_TIMEOUT_S:.0f} s (log: {log})")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)  # warm shutdown: the pool's children exit with it
    try:
        worker.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


@contextmanager
def start(workers: int) -> Iterator[CeleryCluster]:
    """A celery worker with a prefork pool of `workers` processes over a freshly flushed Redis database."""
    url = os.environ.setdefault("MAOS_PEERS_REDIS_URL", DEFAULT_REDIS_URL)  # the worker reads it too
    redis_client = _redis(url)
    redis_client.flushdb()
    from benchmarks.peers import celery_app

    name = f"peers-{workers}-{os.getpid()}@localhost"
    with tempfile.TemporaryDirectory(prefix="maos-peers-celery-") as tmp:
        log = Path(tmp) / "worker.log"
        argv = [sys.executable, "-m", "celery", "-A", "benchmarks.peers.celery_app", "worker"]
        argv += ["--pool", "prefork", "--concurrency", str(workers), "--hostname", name, "--loglevel", "WARNING"]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with log.open("wb") as out:
            worker = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(celery_app.app, worker, name, log)
            yield CeleryCluster(celery_app)
        finally:
            _stop(worker)
            redis_client.flushdb()
            redis_client.close()


def open_system() -> tuple[str, common.Start]:
    import celery

    return str(celery.__version__), start


if __name__ == "__main__":
    common.runner_main("celery", open_system)
