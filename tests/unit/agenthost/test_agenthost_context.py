"""TaskContext: attributes, rate-limited progress (the last one always delivered), cancellation, log."""

from __future__ import annotations

import time

import pytest
from maos.client._context import PROGRESS_MIN_INTERVAL_SECONDS, TaskContext


class Runtime:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []
        self.flush_at: list[float] = []

    def send_progress(self, ctx: TaskContext, fraction: float, message: str) -> None:
        self.sent.append((fraction, message))

    def schedule_progress_flush(self, ctx: TaskContext, at: float) -> None:
        self.flush_at.append(at)


def test_attributes_and_defaults() -> None:
    ctx = TaskContext(task_id="t1", input={"a": 1})
    assert ctx.task_id == "t1"
    assert ctx.attempt == 1
    assert ctx.root_id == "t1"  # a task without a root is its own root
    assert ctx.parent_id == ""
    assert ctx.dependencies == []
    assert ctx.labels == {}
    assert ctx.input == {"a": 1}
    assert not ctx.cancelled
    assert "t1" in repr(ctx)


def test_progress_without_a_runtime_is_a_no_op() -> None:
    TaskContext(task_id="t").progress(0.5, "fine")


def test_progress_is_rate_limited_and_the_last_is_held_for_a_flush() -> None:
    rt = Runtime()
    ctx = TaskContext(task_id="t", runtime=rt)
    for i in range(1, 51):
        ctx.progress(i / 50, f"step {i}")
    assert rt.sent == [(0.02, "step 1")]
    # One flush was scheduled for when the interval has passed; the newest value waits for it.
    assert len(rt.flush_at) == 1
    assert rt.flush_at[0] - time.monotonic() <= PROGRESS_MIN_INTERVAL_SECONDS
    ctx.flush_progress()
    assert rt.sent[-1] == (1.0, "step 50")
    ctx.flush_progress()  # nothing pending: nothing sent
    assert len(rt.sent) == 2


def test_progress_after_the_interval_goes_out_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    rt = Runtime()
    ctx = TaskContext(task_id="t", runtime=rt)
    ctx.progress(0.1)
    now[0] += 0.05
    ctx.progress(0.2)
    now[0] += 0.06
    ctx.progress(0.3)
    assert rt.sent == [(0.1, ""), (0.3, "")]


def test_fraction_is_clamped() -> None:
    rt = Runtime()
    TaskContext(task_id="t", runtime=rt).progress(7)
    assert rt.sent == [(1.0, "")]


def test_close_delivers_the_last_progress_then_detaches() -> None:
    rt = Runtime()
    ctx = TaskContext(task_id="t", runtime=rt)
    ctx.progress(0.1)
    ctx.progress(0.9, "almost")
    ctx._close()
    assert rt.sent == [(0.1, ""), (0.9, "almost")]
    ctx.progress(1.0)
    assert len(rt.sent) == 2


def test_cancel_flag() -> None:
    ctx = TaskContext(task_id="t")
    ctx._cancel()
    assert ctx.cancelled


def test_log_writes_a_line_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    ctx = TaskContext(task_id="t")
    ctx.log("hello")
    ctx.log("two\n")
    assert capsys.readouterr().err == "hello\ntwo\n"


def test_context_module_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, maos.client._context; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
