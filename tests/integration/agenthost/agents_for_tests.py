"""Agent functions used only by the agent host's integration tests (imported inside worker processes)."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from maos.client._context import TaskContext


def segfault(ctx: TaskContext, input: Any) -> None:
    ctypes.string_at(0)


def exit3(ctx: TaskContext, input: Any) -> None:
    os._exit(3)


def crash_if(ctx: TaskContext, input: Any) -> Any:
    """Echo, except that {"crash": true} kills the worker (for batch requeue tests)."""
    if isinstance(input, dict) and input.get("crash"):
        os._exit(3)
    return input


def sleep_sync(ctx: TaskContext, input: Any) -> str:
    time.sleep(float(input))
    return "woke up"


def cooperative(ctx: TaskContext, input: Any) -> str:
    """A sync loop that honours ctx.cancelled."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ctx.cancelled:
            ctx.log("noticed the cancel")
            return "stopped early"
        time.sleep(0.01)
    return "ran to the end"


async def wait_async(ctx: TaskContext, input: Any) -> str:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        print("async agent cancelled", file=sys.stderr)
        raise
    return "not cancelled"


async def async_double(ctx: TaskContext, input: Any) -> Any:
    await asyncio.sleep(0.001)
    return {"double": input * 2}


def chatty(ctx: TaskContext, input: Any) -> str:
    print("via print")
    sys.stderr.write("via sys.stderr\n")
    os.write(2, b"via fd 2\n")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('via a child process\\n')"], check=True)
    ctx.log(f"via ctx.log for {ctx.task_id}")
    return "ok"


def raiser(ctx: TaskContext, input: Any) -> None:
    raise ValueError(f"boom on {input}")


def not_json(ctx: TaskContext, input: Any) -> Any:
    return {1, 2, 3}


def progress(ctx: TaskContext, input: Any) -> int:
    n = int(input)
    for i in range(n):
        ctx.progress((i + 1) / n, f"step {i + 1}")
        time.sleep(0.001)
    return n


def memory_hog(ctx: TaskContext, input: Any) -> int:
    blob = bytearray(int(input))  # zero-filled: touched, so resident
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    time.sleep(30)
    return len(blob)


def context_view(ctx: TaskContext, input: Any) -> dict[str, Any]:
    return {
        "task_id": ctx.task_id,
        "attempt": ctx.attempt,
        "root_id": ctx.root_id,
        "parent_id": ctx.parent_id,
        "description": ctx.description,
        "agent_type": ctx.agent_type,
        "input": ctx.input,
        "dependencies": ctx.dependencies,
        "labels": ctx.labels,
        "endpoint": ctx.endpoint,
    }


_MAOS_VARS = ("MAOS_ENDPOINT", "MAOS_TASK_ID", "MAOS_ATTEMPT", "MAOS_ROOT_ID", "MAOS_AGENT_TYPE")
_CHILD_ENV = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {_MAOS_VARS!r}}}))"


def _env_now() -> dict[str, Any]:
    """The MAOS_* variables as Python sees them and as a child process inherits them."""
    out = subprocess.run([sys.executable, "-c", _CHILD_ENV], capture_output=True, text=True, check=True)
    return {"python": {k: os.environ.get(k) for k in _MAOS_VARS}, "child": json.loads(out.stdout)}


def env_view(ctx: TaskContext, input: Any) -> dict[str, Any]:
    """The task's environment; with {"later": path}, also what a leftover thread sees once the task is over."""
    if isinstance(input, dict) and input.get("later"):
        path = input["later"]

        def look_later() -> None:
            time.sleep(0.5)
            with open(path + ".tmp", "w") as f:
                json.dump(_env_now(), f)
            os.rename(path + ".tmp", path)

        threading.Thread(target=look_later, daemon=True).start()
    return _env_now()


def spawn_failing_child(ctx: TaskContext, input: Any) -> Any:
    """Waits on a child that raises: the wait raises FailedPrecondition naming it."""
    return ctx.spawn_and_wait("fail please", agent_type="raiser", input=3)


async def async_spawner(ctx: TaskContext, input: Any) -> Any:
    """Two async_double children of input and input + 1, through the async client."""
    n = int(input)
    ids = await ctx.spawn_many_async(
        [{"description": f"double {v}", "agent_type": "async_double", "input": v} for v in (n, n + 1)]
    )
    return await ctx.wait_async(ids, timeout=30)


def waits_on_a_slow_child(ctx: TaskContext, input: Any) -> Any:
    """Spawns a child that runs until cancelled, and waits on it (sync)."""
    return ctx.wait([ctx.spawn("never ends", agent_type="cooperative")])
