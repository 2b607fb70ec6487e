"""Agent functions the integration tests run in real worker processes."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any


def sleep(ctx: Any, data: Any) -> dict[str, Any]:
    seconds = float((data or {}).get("seconds", 1.0))
    time.sleep(seconds)
    return {"slept": seconds, "pid": os.getpid()}


def segfault(ctx: Any, data: Any) -> None:
    ctypes.string_at(0)


def exit_hard(ctx: Any, data: Any) -> None:
    os._exit(3)


def fail(ctx: Any, data: Any) -> None:
    raise ValueError("asked to fail")


def fail_first_attempt(ctx: Any, data: Any) -> dict[str, int]:
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return {"attempt": ctx.attempt}
