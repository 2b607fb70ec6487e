"""Ray on the peer workloads: a local Ray instance (ray.init) with num_cpus = N, so N tasks run at once.

Ray starts one worker process per CPU slot; its driver submits with
`f.remote(...)` and collects with `ray.get`. The fan-in passes the 1,000
object refs to the reducer as arguments, which Ray resolves before it runs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.peers import common, workloads

OBJECT_STORE_BYTES = 256 * 1024 * 1024  # ample for small ints; Ray's default takes 30% of RAM


class RayCluster:
    """The workloads as Ray remote functions."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self._noop = ray.remote(workloads.noop)
        self._total_of = ray.remote(workloads.total_of)
        self._burn = ray.remote(workloads.burn)

    def noop_many(self, n: int) -> list[int]:
        return list(self._ray.get([self._noop.remote(i) for i in range(n)], timeout=common.TIMEOUT_S))

    def noop_one(self, x: int) -> int:
        return int(self._ray.get(self._noop.remote(x), timeout=common.TIMEOUT_S))

    def fan_in(self, width: int) -> int:
        refs = [self._noop.remote(i) for i in range(width)]
        return int(self._ray.get(self._total_of.remote(*refs), timeout=common.TIMEOUT_S))

    def cpu_many(self, tasks: int, iterations: int) -> list[int]:
        refs = [self._burn.remote(iterations) for _ in range(tasks)]
        return list(self._ray.get(refs, timeout=common.TIMEOUT_S))


@contextmanager
def start(workers: int) -> Iterator[RayCluster]:
    """A fresh local Ray instance with `workers` CPU slots; shut down on exit, its session files removed."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="maos-peers-ray-")  # short: Ray's unix socket paths live under it
    try:
        ray.init(
            _temp_dir=temp_dir,
            num_cpus=workers,
            num_gpus=0,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
        try:
            yield RayCluster(ray)
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def open_system() -> tuple[str, common.Start]:
    import ray

    return str(ray.__version__), start


if __name__ == "__main__":
    common.runner_main("ray", open_system)
