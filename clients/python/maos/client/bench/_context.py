"""What every benchmark shares: the client, the sizes, progress reporting, and the
bookkeeping of everything the run creates so that the cleanup can remove it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, Unpack

from google.protobuf.timestamp_pb2 import Timestamp
from maos.errors import DeadlineExceeded
from maos.v1 import common_pb2

from .._enums import is_final, status_name
from .._specs import SpecOptions
from .._sync_client import Client
from ._config import BenchConfig

BENCH_LABEL = "maos.bench"
"""Label key on every task the bench submits; its value is the run id."""

Progress = Callable[[str], None]
_P = ParamSpec("_P")
_T = TypeVar("_T")


def seconds(ts: Timestamp) -> float | None:
    """A protobuf Timestamp as seconds since the epoch; None when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.seconds + ts.nanos / 1e9


def ms_between(start: Timestamp, end: Timestamp) -> float | None:
    """end - start in milliseconds (both stamped by the control plane's clock); None if either is unset."""
    a, b = seconds(start), seconds(end)
    return None if a is None or b is None else max(b - a, 0.0) * 1000


@dataclass
class Created:
    """What the run created and must remove: task trees (by root id) and state keys."""

    roots: dict[str, None] = field(default_factory=dict)
    keys: dict[tuple[str, str], None] = field(default_factory=dict)  # (namespace, key)
    messages_acked: int = 0

    def add_tasks(self, tasks: Iterable[common_pb2.Task]) -> None:
        for task in tasks:
            self.roots[task.root_id or task.id] = None

    def add_key(self, namespace: str, key: str) -> None:
        self.keys[(namespace, key)] = None


@dataclass
class BenchContext:
    """Handed to each benchmark: submit through it, so everything is labelled and tracked."""

    client: Client
    config: BenchConfig
    run_id: str
    data_dir: Path
    progress: Progress
    created: Created = field(default_factory=Created)
    slots: int = 0  # worker slots of the connected hosts when the run began
    agent_types: tuple[str, ...] = ()  # agent types the connected hosts offer
    namespace: str = ""  # shared-state namespace of the run's keys
    workers: int = 0  # worker processes of the connected hosts when the run began
    fresh_workers: int = 0  # of which had run no task yet
    cold_probes: dict[str, tuple[float, float]] | None = None  # agent type -> (start ms, round trip ms)

    @property
    def labels(self) -> dict[str, str]:
        return {BENCH_LABEL: self.run_id}

    def _labelled(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return {**spec, "labels": {**(spec.get("labels") or {}), **self.labels}}

    def submit(self, description: str, *, wait: float | None = None, **options: Unpack[SpecOptions]) -> common_pb2.Task:
        """SubmitTask (optionally waiting for the end), labelled and tracked for cleanup."""
        options["labels"] = {**(options.get("labels") or {}), **self.labels}
        task = self.client.submit_task(description, wait=wait, **options)
        self.created.add_tasks([task])
        return task

    def submit_many(self, specs: Iterable[Mapping[str, Any]]) -> list[common_pb2.Task]:
        """SubmitTasks of spec mappings, labelled and tracked for cleanup."""
        labelled = [self._labelled(spec) for spec in specs]
        tasks = self.client.submit_tasks(labelled)
        self.created.add_tasks(tasks)
        return tasks

    def submit_workflow(
        self, nodes: Mapping[str, Mapping[str, Any]], description: str
    ) -> tuple[common_pb2.Task, dict[str, str]]:
        """SubmitWorkflow, labelled and tracked for cleanup."""
        labelled = {
            key: {**spec, "labels": {**(spec.get("labels") or {}), **self.labels}} for key, spec in nodes.items()
        }
        root, ids = self.client.submit_workflow(labelled, description, labels=self.labels)
        self.created.add_tasks([root])
        return root, ids

    def wait_all(self, ids: list[str], what: str, *, include_result: bool = False) -> list[common_pb2.Task]:
        """Every task final within the config's timeout, else DeadlineExceeded naming `what`."""
        tasks = self.client.wait_tasks(ids, timeout=self.config.timeout_seconds, include_result=include_result)
        unfinished = [t for t in tasks if not is_final(t.status)]
        if unfinished:
            raise DeadlineExceeded(
                f"{what}: {len(unfinished)} of {len(ids)} tasks still {status_name(unfinished[0].status)} after "
                f"{self.config.timeout_seconds:.0f}s; is an agent host connected and idle?"
            )
        return tasks


def timed(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> tuple[_T, float]:
    """fn(*args, **kwargs) and how long it took, in milliseconds."""
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, (time.perf_counter() - start) * 1000
