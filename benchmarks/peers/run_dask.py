"""Dask distributed on the peer workloads: a LocalCluster of N single-threaded worker processes.

The scheduler runs in the client's process (LocalCluster's default); each
worker is its own process (behind a nanny) with one thread, so CPU-bound
Python runs N at a time. `client.map` submits many tasks at once; the fan-in
passes the 1,000 futures to the reducer, which Dask resolves before it runs.
Every submit is `pure=False`, so no result is ever reused from an earlier call.
`client.gather` takes no timeout; the harness's per-system timeout bounds a hang.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.peers import common, workloads


class DaskCluster:
    """The workloads as Dask futures."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def noop_many(self, n: int) -> list[int]:
        futures = self._client.map(workloads.noop, range(n), pure=False)
        return list(self._client.gather(futures))

    def noop_one(self, x: int) -> int:
        return int(self._client.submit(workloads.noop, x, pure=False).result(timeout=common.TIMEOUT_S))

    def fan_in(self, width: int) -> int:
        futures = self._client.map(workloads.noop, range(width), pure=False)
        return int(self._client.submit(workloads.total, futures, pure=False).result(timeout=common.TIMEOUT_S))

    def cpu_many(self, tasks: int, iterations: int) -> list[int]:
        futures = self._client.map(workloads.burn, [iterations] * tasks, pure=False)
        return list(self._client.gather(futures))


@contextmanager
def start(workers: int) -> Iterator[DaskCluster]:
    """A LocalCluster with `workers` worker processes of one thread each, no dashboard; closed on exit."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers, timeout=common.TIMEOUT_S)
        yield DaskCluster(client)


def open_system() -> tuple[str, common.Start]:
    import dask
    import distributed

    if distributed.__version__ != dask.__version__:  # released in lockstep; say so when they differ
        return f"{dask.__version__}/distributed {distributed.__version__}", start
    return str(dask.__version__), start


if __name__ == "__main__":
    common.runner_main("dask", open_system)
