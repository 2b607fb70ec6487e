"""Helpers for the agent host's integration tests (unique module name: tests dirs are not packages)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maos.agenthost import PoolTask, TaskOutcome
from maos.profiles import AgentProfile, load_profiles, parse_profiles

HERE = Path(__file__).resolve().parent
PY = sys.executable

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
