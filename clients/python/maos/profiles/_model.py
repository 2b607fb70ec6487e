"""Agent profiles: what an agent type is and how a host runs it (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class PythonRunner:
    """Run a Python callable `fn(ctx, input)` named as "package.module:function"."""

    target: str

    @property
    def module(self) -> str:
        """The module part of the target."""
        return self.target.partition(":")[0]

    @property
    def function(self) -> str:
        """The attribute path after the colon (may be dotted, e.g. "Class.method")."""
        return self.target.partition(":")[2]


@dataclass(frozen=True, slots=True)
class CommandRunner:
    """Run an external program from an argv template, never through a shell.

    Each argument may contain the placeholders {description}, {input},
    {task_id}, {attempt} and {input_file}; they are substituted per argument.
    """

    argv: tuple[str, ...]


Runner = PythonRunner | CommandRunner
RunnerKind = Literal["python", "command"]


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """One agent type: its capabilities, how to run it and its limits.

    `timeout_seconds` is the default per-task timeout (a task's own timeout
    wins). `memory_limit_bytes` caps the resident memory of the worker (and
    its command child) while it runs a task of this type; `cpu_cores` is the
    scheduling request. `batch_size` is how many queued tasks of this type a
    host may hand one worker in a single frame.
    """

    name: str
    capabilities: tuple[str, ...]
    runner: Runner
    timeout_seconds: float
    memory_limit_bytes: int | None = None
    cpu_cores: float | None = None
    batch_size: int = 1
    description: str = ""

    @property
    def runner_kind(self) -> RunnerKind:
        """ "python" or "command", as AgentTypeInfo.runner names it on the wire."""
        return "python" if isinstance(self.runner, PythonRunner) else "command"
