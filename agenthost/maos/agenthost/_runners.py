"""Runners used inside a worker process: Python "module:function" targets and argv command templates."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
import signal
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

PLACEHOLDERS = ("description", "input", "task_id", "attempt", "input_file")
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


class RunnerError(Exception):
    """An attempt failed for a reason with a machine-readable `kind` (e.g. "exit_code")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def substitute_argv(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Fill {description}, {input}, {task_id}, {attempt}, {input_file} in each argument.

    One pass per argument, so a value that itself contains "{input}" is never
    expanded again; unknown braces (e.g. awk's '{print $1}') stay literal. The
    result is an argv list for exec: no shell ever sees it, so an input like
    "; rm -rf /" stays one inert argument.
    """
    return [_PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), arg) for arg in template]


def uses_placeholder(template: Sequence[str], name: str) -> bool:
    """Whether any argument of `template` mentions {name}."""
    token = "{" + name + "}"
    return any(token in arg for arg in template)


class TargetCache:
    """Imports "module:function" targets once per worker and keeps them."""

    def __init__(self) -> None:
        self._cache: dict[str, Callable[..., Any]] = {}

    def resolve(self, target: str) -> Callable[..., Any]:
        """The callable named by `target`; raises RunnerError(kind="import_error")."""
        fn = self._cache.get(target)
        if fn is not None:
            return fn
        module_name, _, attr_path = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr_path.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise RunnerError("import_error", f"cannot load {target!r}: {type(exc).__name__}: {exc}") from exc
        if not callable(obj):
            raise RunnerError("import_error", f"{target!r} is a {type(obj).__name__}, not a callable")
        resolved: Callable[..., Any] = obj
        self._cache[target] = resolved
        return resolved


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """Everything one command attempt needs, already resolved by the worker."""

    template: tuple[str, ...]
    description: str
    input_text: str
    task_id: str
    attempt: int
    env: Mapping[str, str]
    grace_seconds: float
    max_output_bytes: int


async def run_command(spec: CommandSpec, last_stderr_line: Callable[[], str]) -> str:
    """Run one command attempt; return its result as JSON text.

    stdout is the result: JSON if it parses as JSON, else a JSON string of the
    text. stderr is inherited (the worker's per-task capture), so it is the
    task log. Cancellation (task.cancel()) sends SIGTERM, then SIGKILL after
    the grace period, and re-raises.
    """
    input_file: str | None = None
    try:
        values = {
            "description": spec.description,
            "input": spec.input_text,
            "task_id": spec.task_id,
            "attempt": str(spec.attempt),
        }
        if uses_placeholder(spec.template, "input_file"):
            fd, input_file = tempfile.mkstemp(prefix=f"maos-{spec.task_id}-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(spec.input_text)
            values["input_file"] = input_file
        argv = substitute_argv(spec.template, values)
        env = {**os.environ, **spec.env}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=env
            )
        except FileNotFoundError:
            raise RunnerError(
                "command_not_found", f"command not found: {argv[0]!r} (not on PATH of the agent host)"
            ) from None
        except PermissionError:
            raise RunnerError("command_not_found", f"command {argv[0]!r} is not executable") from None
        except OSError as exc:
            raise RunnerError("command_failed", f"cannot start {argv[0]!r}: {exc}") from None
        try:
            out = await _read_capped(proc, spec.max_output_bytes)
            code = await proc.wait()
        except BaseException:
            await _stop(proc, spec.grace_seconds)
            raise
        if out is None:
            raise RunnerError(
                "result_too_large", f"command {argv[0]!r} wrote more than {spec.max_output_bytes} bytes to stdout"
            )
        if code != 0:
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            last = last_stderr_line()
            raise RunnerError("exit_code", f"command {argv[0]!r} {how}" + (f": {last}" if last else ""))
        return _stdout_to_json(out)
    finally:
        if input_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(input_file)


async def _read_capped(proc: asyncio.subprocess.Process, limit: int) -> bytes | None:
    assert proc.stdout is not None
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await proc.stdout.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return None
        chunks.append(chunk)


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds. (The host kills the worker's whole process
    group if even this overruns its own grace, so the child cannot outlive a stuck worker.)"""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _stdout_to_json(out: bytes) -> str:
    stripped = out.strip()
    if not stripped:
        return "null"
    try:
        orjson.loads(stripped)
    except orjson.JSONDecodeError:
        text = out.decode("utf-8", errors="replace").rstrip("\r\n")
        return orjson.dumps(text).decode()
    return stripped.decode("utf-8", errors="replace")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
