"""TaskContext: what a Python agent function receives as its first argument.

    def run(ctx: TaskContext, input: Any) -> Any:
        for i, row in enumerate(rows):
            if ctx.cancelled:          # cooperative cancellation
                return None
            ctx.progress(i / len(rows), "scanning")
        ctx.log("done")                # lands in the task's log
        return {"rows": len(rows)}

The worker process builds one per task attempt and connects it to the worker
runtime through a small `ContextRuntime` object. This module must stay light:
agent workers import it, so it never imports grpc or the rest of the SDK.
Later versions add spawn/wait/send/state methods that go through the same
runtime object.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Protocol

__all__ = ["PROGRESS_MIN_INTERVAL_SECONDS", "ContextRuntime", "TaskContext"]

# A chatty agent must not flood the host stream: at most ~10 progress events per second per task.
PROGRESS_MIN_INTERVAL_SECONDS = 0.1


class ContextRuntime(Protocol):
    """What a TaskContext needs from the process running it (the agent worker).

    Both methods may be called from any thread and must not block.
    """

    def send_progress(self, ctx: TaskContext, fraction: float, message: str) -> None:
        """Deliver one progress event for `ctx`'s task."""

    def schedule_progress_flush(self, ctx: TaskContext, at: float) -> None:
        """Call `ctx.flush_progress()` at time.monotonic() >= `at` (a held-back event is waiting)."""


class TaskContext:
    """One task attempt as seen by the agent code that runs it.

    Attributes: task_id, attempt, root_id, parent_id, description,
    agent_type, input (the decoded JSON input), dependencies (one dict per
    dependency: task_id, key, status, result, description), labels, endpoint
    (the control plane address).
    """

    __slots__ = (
        "_cancelled",
        "_last_sent",
        "_lock",
        "_pending",
        "_runtime",
        "agent_type",
        "attempt",
        "dependencies",
        "description",
        "endpoint",
        "input",
        "labels",
        "parent_id",
        "root_id",
        "task_id",
    )

    def __init__(
        self,
        *,
        task_id: str,
        attempt: int = 1,
        root_id: str = "",
        parent_id: str = "",
        description: str = "",
        agent_type: str = "",
        input: Any = None,
        dependencies: list[dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None,
        endpoint: str = "",
        runtime: ContextRuntime | None = None,
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.root_id = root_id or task_id
        self.parent_id = parent_id
        self.description = description
        self.agent_type = agent_type
        self.input = input
        self.dependencies: list[dict[str, Any]] = dependencies if dependencies is not None else []
        self.labels: dict[str, str] = labels if labels is not None else {}
        self.endpoint = endpoint
        self._runtime = runtime
        self._cancelled = False
        self._last_sent = -1e18
        self._pending: tuple[float, str] | None = None
        # Created on first use: most tasks never report progress.
        self._lock: threading.Lock | None = None

    def __repr__(self) -> str:
        return f"TaskContext(task_id={self.task_id!r}, attempt={self.attempt}, agent_type={self.agent_type!r})"

    @property
    def cancelled(self) -> bool:
        """True once the task was cancelled or timed out; a long-running agent should check it and return."""
        return self._cancelled

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (`fraction` in 0..1, clamped). Rate-limited to ~10/s; the latest is always delivered."""
        runtime = self._runtime
        if runtime is None:
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        if self._lock is None:
            self._lock = threading.Lock()
        now = time.monotonic()
        with self._lock:
            if now - self._last_sent >= PROGRESS_MIN_INTERVAL_SECONDS:
                self._last_sent = now
                self._pending = None
                send, schedule_at = True, 0.0
            else:
                # Hold the newest value back; the runtime flushes it when the interval has passed.
                first_held = self._pending is None
                self._pending = (fraction, message)
                send, schedule_at = False, (self._last_sent + PROGRESS_MIN_INTERVAL_SECONDS if first_held else 0.0)
        # The runtime is called outside our lock, so its own locks never nest inside ours.
        if send:
            runtime.send_progress(self, fraction, message)
        elif schedule_at:
            runtime.schedule_progress_flush(self, schedule_at)

    def flush_progress(self) -> None:
        """Deliver a held-back progress event now, if there is one (called by the runtime)."""
        runtime = self._runtime
        if runtime is None or self._lock is None:
            return
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                self._last_sent = time.monotonic()
        if pending is not None:
            runtime.send_progress(self, pending[0], pending[1])

    def log(self, message: str) -> None:
        """Append a line to the task's log (the worker captures stderr per task)."""
        stream = sys.stderr
        stream.write(message if message.endswith("\n") else message + "\n")
        stream.flush()

    # ---- for the worker runtime ----

    def _cancel(self) -> None:
        """Mark the task cancelled (cooperative: agent code polls `cancelled`)."""
        self._cancelled = True

    def _close(self) -> None:
        """The attempt is over: deliver the last held-back progress, then detach from the runtime."""
        self.flush_progress()
        self._runtime = None
