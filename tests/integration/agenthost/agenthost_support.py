"""Helpers for the agent host's integration tests (unique module name: tests dirs are not packages)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from maos.agenthost import AgentHostConfig, PoolTask, TaskOutcome
from maos.profiles import AgentProfile, load_profiles, parse_profiles
from maos.v1 import common_pb2, hosts_pb2, hosts_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from maos.wire import decode_envelope, encode_envelope, json_payload

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
PY = sys.executable
MAOSCTL = Path(sys.executable).with_name("maosctl")

TEST_PROFILES = f"""
agent_types:
  segfault: {{runner: {{python: "agents_for_tests:segfault"}}, timeout: 30}}
  exit3: {{runner: {{python: "agents_for_tests:exit3"}}, timeout: 30}}
  crash_if: {{runner: {{python: "agents_for_tests:crash_if"}}, timeout: 30, batch_size: 16}}
  sleeper: {{runner: {{python: "agents_for_tests:sleep_sync"}}, timeout: 1}}
  cooperative: {{runner: {{python: "agents_for_tests:cooperative"}}, timeout: 30}}
  waiter: {{runner: {{python: "agents_for_tests:wait_async"}}, timeout: 30}}
  async_double: {{runner: {{python: "agents_for_tests:async_double"}}, timeout: 30}}
  chatty: {{runner: {{python: "agents_for_tests:chatty"}}, timeout: 30}}
  raiser: {{runner: {{python: "agents_for_tests:raiser"}}, timeout: 30}}
  not_json: {{runner: {{python: "agents_for_tests:not_json"}}, timeout: 30}}
  progress: {{runner: {{python: "agents_for_tests:progress"}}, timeout: 30}}
  memory_hog: {{runner: {{python: "agents_for_tests:memory_hog"}}, timeout: 30, resources: {{memory: 150MB}}}}
  context_view: {{runner: {{python: "agents_for_tests:context_view"}}, timeout: 30}}
  env_view: {{runner: {{python: "agents_for_tests:env_view"}}, timeout: 30}}
  spawn_failing_child: {{runner: {{python: "agents_for_tests:spawn_failing_child"}}, timeout: 30}}
  async_spawner: {{runner: {{python: "agents_for_tests:async_spawner"}}, timeout: 30}}
  waits_on_a_slow_child: {{runner: {{python: "agents_for_tests:waits_on_a_slow_child"}}, timeout: 30}}
  recursive: {{runner: {{python: "tests.integration.agent_functions:recursive_spawn"}}, timeout: 60}}
  maosctl_parent: {{runner: {{command: ["sh", "{HERE}/spawn_child.sh", "{MAOSCTL}"]}}, timeout: 60}}
  no_module: {{runner: {{python: "no_such_module_anywhere:run"}}, timeout: 30}}
  argv: {{runner: {{command: ["{PY}", "-c", "import json, sys; print(json.dumps(sys.argv[1:]))",
                               "{{description}}", "{{input}}", "{{task_id}}", "{{attempt}}"]}}, timeout: 30}}
  input_file: {{runner: {{command: ["{PY}", "-c",
      "import json, os, sys; print(json.dumps({{'input': json.load(open(sys.argv[1])),
      'env': {{k: v for k, v in os.environ.items() if k.startswith('MAOS_')}}}}))",
      "{{input_file}}"]}}, timeout: 30}}
  text_out: {{runner: {{command: ["printf", "hello %s\\n", "{{description}}"]}}, timeout: 30}}
  failing: {{runner: {{command: ["{PY}", "-c",
      "import sys; print('warming up', file=sys.stderr); print('the real problem', file=sys.stderr); sys.exit(4)"]}},
      timeout: 30}}
  missing: {{runner: {{command: ["maos-no-such-program-xyz", "{{description}}"]}}, timeout: 30}}
  sleep_cmd: {{runner: {{command: ["sleep", "60"]}}, timeout: 1}}
"""


def all_profiles() -> dict[str, AgentProfile]:
    profiles = load_profiles()
    profiles.update(parse_profiles(TEST_PROFILES, source="conftest"))
    return profiles


class Collector:
    """A PoolListener that records everything and lets tests await outcomes by task id."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.progress: list[tuple[str, float, str]] = []
        self.outcomes: dict[str, TaskOutcome] = {}
        self.order: list[str] = []
        self._waiters: dict[str, asyncio.Future[TaskOutcome]] = {}
        self._started_waiters: dict[str, asyncio.Future[None]] = {}

    def task_started(self, task: PoolTask, agent_id: str) -> None:
        self.started.append((task.task_id, agent_id))
        fut = self._started_waiters.pop(task.task_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait_started(self, task_id: str, within: float = 20.0) -> None:
        if any(tid == task_id for tid, _ in self.started):
            return
        fut = self._started_waiters.setdefault(task_id, asyncio.get_running_loop().create_future())
        await asyncio.wait_for(fut, within)

    def task_progress(self, task: PoolTask, fraction: float, message: str) -> None:
        self.progress.append((task.task_id, fraction, message))

    def task_finished(self, outcome: TaskOutcome) -> None:
        tid = outcome.task.task_id
        assert tid not in self.outcomes, f"{tid} finished twice"
        self.outcomes[tid] = outcome
        self.order.append(tid)
        fut = self._waiters.pop(tid, None)
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    async def wait(self, task_id: str, within: float = 20.0) -> TaskOutcome:
        if task_id in self.outcomes:
            return self.outcomes[task_id]
        fut = self._waiters.setdefault(task_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(fut, within)


PoolFactory = Callable[..., Any]


def task(task_id: str, agent_type: str, input: str = "null", **kwargs: Any) -> PoolTask:
    return PoolTask(task_id=task_id, attempt=1, agent_type=agent_type, input_json=input, **kwargs)


class FakeControlPlane(hosts_pb2_grpc.HostServiceServicer):
    """Answers Register with Registered, records every item, sends what a test queues, acks on request."""

    def __init__(self) -> None:
        self.registers: list[hosts_pb2.Register] = []
        self.items: list[hosts_pb2.HostItem] = []
        self.auto_ack = True
        self.cond = asyncio.Condition()
        self.tasks: FakeTasks | None = None  # set by the fixture
        self.sent: list[hosts_pb2.ControlItem] = []
        self._out: asyncio.Queue[hosts_pb2.ControlItem | None] | None = None

    async def Connect(
        self, request_iterator: AsyncIterator[common_pb2.Envelope], context: Any
    ) -> AsyncIterator[common_pb2.Envelope]:
        it = request_iterator.__aiter__()
        first = decode_envelope(await anext(it), hosts_pb2.HostItems)
        assert first.items[0].WhichOneof("item") == "register"
        out: asyncio.Queue[hosts_pb2.ControlItem | None] = asyncio.Queue()
        self._out = out
        out.put_nowait(
            hosts_pb2.ControlItem(
                registered=hosts_pb2.Registered(host_id=first.items[0].register.host_id, heartbeat_interval_seconds=0.2)
            )
        )
        async with self.cond:
            self.registers.append(first.items[0].register)
            self.cond.notify_all()

        async def read() -> None:
            async for envelope in it:
                items = decode_envelope(envelope, hosts_pb2.HostItems)
                async with self.cond:
                    for item in items.items:
                        self.items.append(item)
                        if self.auto_ack and item.WhichOneof("item") == "result":
                            lease = hosts_pb2.Lease(task_id=item.result.task_id, attempt=item.result.attempt)
                            out.put_nowait(hosts_pb2.ControlItem(result_ack=hosts_pb2.ResultAck(leases=[lease])))
                    self.cond.notify_all()

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await out.get()
                if item is None:
                    return  # the test dropped the stream
                yield encode_envelope(hosts_pb2.ControlItems(items=[item]), 1)
        finally:
            reader.cancel()

    async def ListHosts(self, request: Any, context: Any) -> Any:  # not used by the host
        raise NotImplementedError

    async def DrainHost(self, request: Any, context: Any) -> Any:  # not used by the host
        raise NotImplementedError

    def send(self, **kwargs: Any) -> None:
        assert self._out is not None
        item = hosts_pb2.ControlItem(**kwargs)
        self.sent.append(item)
        self._out.put_nowait(item)

    def sent_items(self, kind: str) -> list[Any]:
        return [getattr(i, kind) for i in self.sent if i.WhichOneof("item") == kind]

    def drop(self) -> None:
        assert self._out is not None
        self._out.put_nowait(None)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        async with self.cond:
            await asyncio.wait_for(self.cond.wait_for(predicate), within)

    def of_kind(self, kind: str) -> list[Any]:
        return [getattr(i, kind) for i in self.items if i.WhichOneof("item") == kind]

    def result(self, task_id: str) -> hosts_pb2.TaskResult | None:
        return next((r for r in self.of_kind("result") if r.task_id == task_id), None)


def config(endpoint: str, **kwargs: Any) -> AgentHostConfig:
    defaults: dict[str, Any] = {
        "controlplane": endpoint,
        "workers": 1,
        "host_id": "host-under-test",
        "kill_grace_seconds": 0.5,
        "shutdown_grace_seconds": 1.0,
        "python_path": (str(HERE),),
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
    }
    defaults.update(kwargs)
    return AgentHostConfig(**defaults)


def assignment(task_id: str, agent_type: str, value: Any = None, **kwargs: Any) -> hosts_pb2.Assignment:
    return hosts_pb2.Assignment(
        task_id=task_id, attempt=1, agent_type=agent_type, input=json_payload(value), root_id=task_id, **kwargs
    )


_OUTCOME_STATUS = {
    hosts_pb2.OUTCOME_SUCCEEDED: common_pb2.TASK_STATUS_COMPLETED,
    hosts_pb2.OUTCOME_FAILED: common_pb2.TASK_STATUS_FAILED,
    hosts_pb2.OUTCOME_TIMED_OUT: common_pb2.TASK_STATUS_TIMED_OUT,
    hosts_pb2.OUTCOME_CANCELLED: common_pb2.TASK_STATUS_CANCELLED,
}


class FakeTasks(tasks_pb2_grpc.TaskServiceServicer):
    """Just enough TaskService for agents that spawn children and wait on them.

    A submitted task goes straight to the host as an assignment. A WaitTasks call
    that names its caller (maos-task-id / maos-attempt metadata) lends the caller's
    slot on the host stream while it waits, then takes it back, as the real
    control plane does; the answer is built from the results the host reported.
    """

    def __init__(self, cp: FakeControlPlane) -> None:
        self.cp = cp
        self.specs: dict[str, common_pb2.TaskSpec] = {}
        self.waits: list[tuple[tuple[str, ...], str, str]] = []  # (ids, caller task id, caller attempt)
        self._roots: dict[str, str] = {}

    def _submit(self, spec: common_pb2.TaskSpec) -> common_pb2.Task:
        task_id = f"c{len(self.specs) + 1}"
        root = self._roots.get(spec.parent_id, spec.parent_id) or task_id
        self._roots[task_id] = root
        self.specs[task_id] = spec
        self.cp.send(
            assignment=hosts_pb2.Assignment(
                task_id=task_id,
                attempt=1,
                agent_type=spec.agent_type,
                description=spec.description,
                input=spec.input,
                root_id=root,
                parent_id=spec.parent_id,
            )
        )
        return common_pb2.Task(
            id=task_id, root_id=root, parent_id=spec.parent_id, status=common_pb2.TASK_STATUS_QUEUED, spec=spec
        )

    def _task(self, task_id: str) -> common_pb2.Task:
        task = common_pb2.Task(id=task_id, status=common_pb2.TASK_STATUS_RUNNING)
        result = self.cp.result(task_id)
        if result is not None:
            task.status = _OUTCOME_STATUS[result.outcome]
            if result.HasField("result"):
                task.result.CopyFrom(result.result)
            if result.HasField("error"):
                task.error.CopyFrom(result.error)
        return task

    async def SubmitTask(self, request: tasks_pb2.SubmitTaskRequest, context: Any) -> tasks_pb2.SubmitTaskResponse:
        return tasks_pb2.SubmitTaskResponse(task=self._submit(request.spec))

    async def SubmitTasks(self, request: tasks_pb2.SubmitTasksRequest, context: Any) -> tasks_pb2.SubmitTasksResponse:
        return tasks_pb2.SubmitTasksResponse(tasks=[self._submit(spec) for spec in request.specs])

    async def WaitTasks(self, request: tasks_pb2.WaitTasksRequest, context: Any) -> tasks_pb2.WaitTasksResponse:
        metadata = dict(context.invocation_metadata() or ())
        task_id, attempt = metadata.get("maos-task-id", ""), metadata.get("maos-attempt", "")
        self.waits.append((tuple(request.ids), task_id, attempt))
        lease = {"task_id": task_id, "attempt": int(attempt)} if task_id and attempt.isdigit() else None
        if lease is not None:
            self.cp.send(slot_lent=hosts_pb2.SlotLent(**lease, lent=True))
        timed_out = False
        try:
            await self.cp.wait_until(
                lambda: all(self.cp.result(i) is not None for i in request.ids), request.timeout_seconds or 60.0
            )
        except TimeoutError:
            timed_out = True
        finally:
            if lease is not None:
                self.cp.send(slot_lent=hosts_pb2.SlotLent(**lease, lent=False))
        return tasks_pb2.WaitTasksResponse(tasks=[self._task(i) for i in request.ids], timed_out=timed_out)
