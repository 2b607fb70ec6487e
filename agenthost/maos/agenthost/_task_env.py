"""Per-task environment variables of a worker process, rewritten in place.

`os.environ[key] = value` calls setenv(3), and glibc's setenv keeps every
distinct value it was ever given (so that old pointers stay valid): a worker
that set MAOS_TASK_ID for a million tasks would leak ~80 bytes per task and
pay a growing search on each. POSIX putenv(3) instead makes the caller's own
string part of the environment, and "altering the string shall change the
environment". So each variable gets one buffer of ours, installed once with
putenv and then rewritten in place: O(1), no allocation, seen by child
processes. os.environ's own mapping is updated to match, so Python code (the
SDK's caller metadata, os.getenv) sees the same value.

If agent code replaces or deletes one of the variables through os.environ,
the next update notices (os.environ no longer holds our value object) and
installs our buffer again. Where putenv or CPython's os.environ internals are
not available, plain os.environ assignment is used.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence
from typing import Any

# Bytes per variable buffer; a longer value gets a larger buffer (ids are far shorter).
_BUFFER_BYTES = 128
# Every buffer ever handed to putenv, kept for the life of the process: the environment may still
# point at one after its TaskEnv is gone (a few hundred bytes per TaskEnv).
_KEEP_ALIVE: list[ctypes.Array[ctypes.c_char]] = []


def _buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(size)
    _KEEP_ALIVE.append(buf)
    return buf


def _load_putenv() -> Callable[[Any], int] | None:
    try:
        putenv = ctypes.CDLL(None).putenv
    except (OSError, AttributeError):
        return None
    putenv.argtypes = [ctypes.c_char_p]
    putenv.restype = ctypes.c_int
    fn: Callable[[Any], int] = putenv
    return fn


# Stands for "our buffer is not installed": never the value object os.environ's mapping holds.
_NOT_INSTALLED = object()


class _Var:
    __slots__ = ("buf", "key", "limit", "name", "raw", "start", "view")

    def __init__(self, key: str) -> None:
        self.key = key
        self.name = key.encode()
        self.start = len(self.name) + 1  # the value starts after "NAME="
        self.buf = _buffer(_BUFFER_BYTES)
        self.view = memoryview(self.buf).cast("B")
        self.limit = len(self.view) - 1  # room for the terminating NUL
        # The value object we put in os.environ's mapping while our buffer is the variable.
        self.raw: object = _NOT_INSTALLED


class TaskEnv:
    """A fixed tuple of environment variables, updated together many times without leaking.

    env = TaskEnv(("MAOS_TASK_ID", "MAOS_ATTEMPT"))
    env.update(("t1", "1"))     # per task: only changed values are written
    env.restore()               # back to what they were before the first update
    """

    __slots__ = ("_before", "_data", "_last", "_putenv", "_vars")

    def __init__(self, keys: Sequence[str]) -> None:
        self._vars = tuple(_Var(key) for key in keys)
        self._before = tuple(os.environ.get(key) for key in keys)
        data = getattr(os.environ, "_data", None)
        self._data: dict[bytes, bytes] | None = data if isinstance(data, dict) else None
        self._putenv = _load_putenv() if self._data is not None else None
        self._last: tuple[str, ...] | None = None

    @property
    def active(self) -> bool:
        """Whether update() was called since construction or the last restore()."""
        return self._last is not None

    def update(self, values: tuple[str, ...]) -> None:
        """Set the variables to `values` (in the order of the keys); unchanged ones cost a comparison."""
        last = self._last
        self._last = values
        data = self._data
        if last is None or data is None:
            for var, value in zip(self._vars, values, strict=True):
                self._install(var, value)
            return
        # The per-task path (indexing beats a three-way zip here): only changed values are written.
        variables = self._vars
        i = -1
        for value in values:
            i += 1
            if value == last[i]:
                continue
            var = variables[i]
            raw = value.encode("utf-8", "surrogateescape")
            start = var.start
            end = start + len(raw)
            name = var.name
            # Rewrite in place while our buffer is still the variable (nobody replaced or removed it).
            if end < var.limit and data.get(name) is var.raw:
                view = var.view
                view[start:end] = raw
                view[end] = 0
                data[name] = var.raw = raw
            else:
                self._install(var, value)

    def restore(self) -> None:
        """Give every variable the value it had when this object was made (unset if it had none)."""
        self._last = None
        for var, value in zip(self._vars, self._before, strict=True):
            if value is None:
                os.environ.pop(var.key, None)  # unsetenv: never allocates
                var.raw = _NOT_INSTALLED
            else:
                self._install(var, value)

    def _install(self, var: _Var, value: str) -> None:
        putenv = self._putenv
        data = self._data
        if putenv is None or data is None:
            os.environ[var.key] = value
            return
        raw = value.encode("utf-8", "surrogateescape")
        entry = var.name + b"=" + raw + b"\0"
        if len(entry) > len(var.view):
            var.buf = _buffer(2 * len(entry))
            var.view = memoryview(var.buf).cast("B")
            var.limit = len(var.view) - 1
        var.view[: len(entry)] = entry
        if putenv(var.buf) != 0:
            var.raw = _NOT_INSTALLED
            os.environ[var.key] = value
            return
        data[var.name] = raw
        var.raw = raw


__all__ = ["TaskEnv"]
