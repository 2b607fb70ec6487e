"""Benchmark 6, storage I/O: shared-state Put and Get of large values, in MiB/s.

Values are JSON strings of random hex digits (incompressible text) of each
configured size; `storage_values` distinct keys per size are written, then
read back (checked), one call at a time. MiB/s is bytes moved / summed call
time. The keys live in the run's namespace and are deleted by the cleanup.
"""

from __future__ import annotations

import os
from typing import Any

from maos.errors import Internal

from .._state_client import RawJson
from ._context import BenchContext, timed
from ._stats import rate, summarize

MIB = 1024 * 1024


def _value(size: int) -> RawJson:
    """A JSON string value of exactly `size` bytes."""
    digits = os.urandom((size - 2 + 1) // 2).hex()[: size - 2]
    return RawJson(b'"' + digits.encode("ascii") + b'"')


def storage_io(ctx: BenchContext) -> dict[str, Any]:
    """Put and Get throughput and latency per value size."""
    namespace = ctx.namespace
    state = ctx.client.state
    sizes: list[dict[str, Any]] = []
    for size in ctx.config.storage_sizes:
        ctx.progress(f"{ctx.config.storage_values} values of {size:,} bytes")
        keys = [f"bench/{ctx.run_id}/blob-{size}-{i}" for i in range(ctx.config.storage_values)]
        values = [_value(size) for _ in keys]
        puts: list[float] = []
        for key, value in zip(keys, values, strict=True):
            ctx.created.add_key(namespace, key)
            puts.append(timed(state.put, key, value, namespace=namespace)[1])
        gets: list[float] = []
        for key, value in zip(keys, values, strict=True):
            got, ms = timed(state.get, key, namespace=namespace)
            gets.append(ms)
            if got is None or got.value != value[1:-1].decode("ascii"):
                raise Internal(f"storage I/O: key {key} did not read back as written; see the control plane log")
        moved = size * len(keys) / MIB
        sizes.append(
            {
                "value_bytes": size,
                "values": len(keys),
                "put_mib_per_second": rate(moved, sum(puts) / 1000),
                "get_mib_per_second": rate(moved, sum(gets) / 1000),
                "put_ms": summarize(puts),
                "get_ms": summarize(gets),
            }
        )
    return {"namespace": namespace, "sizes": sizes}
