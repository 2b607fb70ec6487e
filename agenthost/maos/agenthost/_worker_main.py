"""The agent worker process: runs the tasks its host sends, one after another.

Started by the host as `python -m maos.agenthost.worker --state-fd N`. File
descriptors are rearranged first so agent code cannot corrupt the protocol:

    frames in   a private dup of the original stdin (fd 0 becomes /dev/null)
    frames out  a private dup of the original stdout
    fd 1, fd 2  an unlinked temp file: everything agent code (and its child
                processes) print lands there; each task reads back what it
                added (the task log, last `log_tail_bytes`)
    diag        a private dup of the original stderr (a pipe the host logs):
                the worker's own errors and faulthandler dumps on a crash
    state       an 8-byte shared mapping (--state-fd): the seq of the task
                running now, 0 between tasks, so the host knows exactly which
                task was running if this process dies

Threads: the main thread runs tasks (sync functions directly, coroutines and
commands on one persistent event loop); a reader thread decodes incoming
frames (so cancel frames act while a task runs); a flusher thread sends
buffered events at most FLUSH_DELAY_SECONDS after the oldest one, so a long
task never holds back the results of the quick ones before it.

Environment: MAOS_ENDPOINT names the control plane for the worker's whole
life; while a task runs, MAOS_TASK_ID, MAOS_ATTEMPT, MAOS_ROOT_ID and
MAOS_AGENT_TYPE name it (a command agent's child gets them too), so the SDK's
caller metadata and `maosctl` run from agent code know which task calls.
They are set per task (only the values that changed, rewritten in place:
see _task_env) and restored once the worker has been idle for a moment.
MAOS_TRACING (the host sets it to its own setting) makes each agent run a
span in this process, a child of the host's span named in the task frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import gc
import heapq
import itertools
import logging
import mmap
import os
import queue
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Coroutine
from typing import IO, Any

import orjson
from maos import tracing
from maos.client._context import TaskContext
from maos.errors import MaosError

from ._frames import FrameDecoder, decode_body, encode_frame
from ._runners import CommandSpec, RunnerError, TargetCache, run_command
from ._task_env import TaskEnv

FLUSH_DELAY_SECONDS = 0.002
TRACING_SERVICE_NAME = "maos-worker"
DEFAULT_LOG_TAIL_BYTES = 64 * 1024
DEFAULT_MAX_RESULT_BYTES = 8 * 1024 * 1024
# The capture file is truncated between tasks once it grows past this.
_CAPTURE_ROTATE_BYTES = 8 * 1024 * 1024
# After the host goes away, give the running task this long before the worker exits anyway.
_ORPHAN_GRACE_SECONDS = 3.0
_STATE = struct.Struct("<q")
_TASK_ENV_KEYS = ("MAOS_TASK_ID", "MAOS_ATTEMPT", "MAOS_ROOT_ID", "MAOS_AGENT_TYPE")
# The task variables are restored once the worker has had no work for this long (not after every
# batch: under load the next batch is usually a moment away, and would set them all again).
_ENV_RESTORE_IDLE_SECONDS = 0.05


class _Capture:
    """Per-task stderr capture over one unlinked temp file that fds 1 and 2 point at."""

    def __init__(self, tail_bytes: int) -> None:
        self._file = tempfile.TemporaryFile(prefix="maos-worker-")  # lives as long as the worker
        self.fd = self._file.fileno()
        # O_APPEND: child processes share the file and every write lands at the end.
        import fcntl

        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | os.O_APPEND)
        self._tail = tail_bytes

    def mark(self) -> int:
        """The capture's end offset now (Python-level buffers flushed first)."""
        _flush_std_streams()
        return os.lseek(self.fd, 0, os.SEEK_END)

    def since(self, start: int) -> str:
        """The tail of what was written after `start` (at most the configured tail size)."""
        end = self.mark()
        if end <= start:
            return ""
        begin = max(start, end - self._tail)
        text = os.pread(self.fd, end - begin, begin).decode("utf-8", errors="replace")
        return text if begin == start else "[... log truncated ...]\n" + text

    def last_line(self, start: int) -> str:
        """The last non-empty line written after `start`."""
        lines = [line for line in self.since(start).splitlines() if line.strip()]
        return lines[-1].strip()[:500] if lines else ""

    def rotate_if_large(self) -> None:
        """Truncate between tasks so a chatty worker does not fill the disk."""
        if os.lseek(self.fd, 0, os.SEEK_END) > _CAPTURE_ROTATE_BYTES:
            os.ftruncate(self.fd, 0)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


class WorkerRuntime:
    """The worker's state machine; also the ContextRuntime every TaskContext reports through."""

    def __init__(
        self,
        *,
        in_fd: int,
        out_fd: int,
        decoder: FrameDecoder,
        early_frames: list[bytes],
        init: dict[str, Any],
        state: mmap.mmap | None,
        capture: _Capture,
        diag: IO[str],
    ) -> None:
        self._in_fd = in_fd
        self._out_fd = out_fd
        self._decoder = decoder
        self._early_frames = early_frames
        self._state = state
        self._capture = capture
        self._diag = diag
        self.worker_id: str = init.get("worker_id", "")
        self._endpoint: str = init.get("endpoint", "")
        self._runners: dict[str, dict[str, Any]] = init.get("runners", {})
        self._child_grace: float = float(init.get("child_grace", 1.0))
        self._max_result: int = int(init.get("max_result_bytes", DEFAULT_MAX_RESULT_BYTES))
        self._targets = TargetCache()
        self._inbox: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        # One re-entrant lock guards the outbox, the current-task fields and frame writes.
        self._cond = threading.Condition(threading.RLock())
        self._outbox: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._deferred: list[tuple[float, int, TaskContext]] = []
        self._deferred_seq = itertools.count()
        self._closing = False
        self._current_seq = 0
        self._current_ctx: TaskContext | None = None
        self._current_async: asyncio.Task[Any] | None = None
        self._cancel_requested = False
        self._cancel_before_start: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._host_gone = threading.Event()
        if self._endpoint:
            os.environ["MAOS_ENDPOINT"] = self._endpoint
        self._task_env = TaskEnv(_TASK_ENV_KEYS)

    # ---- main thread ----

    def serve(self) -> int:
        """Run tasks until the host says stop or goes away; the process exit code."""
        threading.Thread(target=self._read_frames, name="maos-frames-in", daemon=True).start()
        threading.Thread(target=self._flush_loop, name="maos-frames-out", daemon=True).start()
        with self._cond:
            self._write_locked(encode_frame({"hello": {"pid": os.getpid(), "worker_id": self.worker_id}}))
        inbox = self._inbox
        while True:
            if not self._task_env.active:
                batch = inbox.get()
            else:
                try:
                    batch = inbox.get(timeout=_ENV_RESTORE_IDLE_SECONDS)
                except queue.Empty:
                    # Idle: nothing runs a task now, so nothing should claim to be one.
                    self._task_env.restore()
                    batch = inbox.get()
            if batch is None:
                break
            last = len(batch) - 1
            for i, task in enumerate(batch):
                event = self._run_one(task) if "tc" not in task else self._run_traced(task)
                self._emit(event, flush_now=i == last and inbox.empty())
            self._capture.rotate_if_large()
        with self._cond:
            self._closing = True
            self._flush_locked()
            self._cond.notify_all()
        if self._loop is not None:
            self._loop.close()
        return 0

    def _run_traced(self, task: dict[str, Any]) -> dict[str, Any]:
        """_run_one inside the agent's span, a child of the host's span named in the frame ("tc")."""
        if not tracing.enabled():
            return self._run_one(task)
        with tracing.agent_run_span(task["tc"], task["id"], task["a"], task["ty"]) as span:
            event = self._run_one(task)
            tracing.record_run_outcome(span, event["st"], event.get("ek", ""), event.get("em", ""))
        return event

    def _run_one(self, task: dict[str, Any]) -> dict[str, Any]:
        seq: int = task["s"]
        agent_type: str = task["ty"]
        runner = self._runners.get(agent_type)
        ctx: TaskContext | None = None
        input_text: str = task.get("in") or "null"
        try:
            value = orjson.loads(input_text)
        except orjson.JSONDecodeError as exc:
            return {"s": seq, "st": "err", "ek": "bad_input", "em": f"task input is not valid JSON: {exc}", "t": 0.0}
        if runner is not None and "python" in runner:
            ctx = TaskContext(
                task_id=task["id"],
                attempt=task["a"],
                root_id=task.get("root", ""),
                parent_id=task.get("par", ""),
                description=task.get("d", ""),
                agent_type=agent_type,
                input=value,
                dependencies=_decode_dependencies(task.get("deps")),
                labels=task.get("lab"),
                endpoint=self._endpoint,
                runtime=self,
            )
        with self._cond:
            if self._cancel_before_start:
                if seq in self._cancel_before_start:
                    self._cancel_before_start.discard(seq)
                    return {"s": seq, "st": "cancel", "t": 0.0}
                # Seqs only grow: marks below this one were for tasks that had already finished.
                self._cancel_before_start = {s for s in self._cancel_before_start if s > seq}
            self._current_seq = seq
            self._current_ctx = ctx
            self._cancel_requested = False
        task_id: str = task["id"]
        self._task_env.update((task_id, str(task["a"]), task.get("root") or task_id, agent_type))
        if self._state is not None:
            _STATE.pack_into(self._state, 0, seq)
        capture = self._capture
        start_offset = capture.mark()
        started = time.perf_counter()
        event: dict[str, Any]
        try:
            if runner is None:
                raise RunnerError("unknown_agent_type", f"this worker has no runner for agent type {agent_type!r}")
            if ctx is not None:
                result = self._run_python(runner["python"], ctx, value)
            else:
                result = self._run_command(runner["command"], task, input_text, start_offset)
            event = {"s": seq, "st": "ok", "r": result}
        except asyncio.CancelledError:
            event = {"s": seq, "st": "cancel"}
        except RunnerError as exc:
            event = {"s": seq, "st": "err", "ek": exc.kind, "em": exc.message}
        except BaseException as exc:  # agent code may raise anything, SystemExit included
            traceback.print_exception(exc)
            event = {"s": seq, "st": "err", "ek": "exception", "em": f"{type(exc).__name__}: {exc}"}
        event["t"] = time.perf_counter() - started
        if ctx is not None:
            # Deliver the last held-back progress before the result, then detach the context.
            ctx._close()
        log = capture.since(start_offset)
        if log:
            event["log"] = log
        with self._cond:
            self._current_seq = 0
            self._current_ctx = None
        if self._state is not None:
            _STATE.pack_into(self._state, 0, 0)
        return event

    def _run_python(self, target: str, ctx: TaskContext, value: Any) -> str:
        fn = self._targets.resolve(target)
        result = fn(ctx, value)
        if hasattr(result, "__await__"):
            result = self._run_async(_await(result))
        try:
            data = orjson.dumps(result)
        except orjson.JSONEncodeError as exc:
            raise RunnerError(
                "result_not_json", f"{target} returned a value that is not JSON-serialisable: {exc}"
            ) from None
        if len(data) > self._max_result:
            raise RunnerError(
                "result_too_large", f"{target} returned {len(data)} bytes of JSON; the limit is {self._max_result}"
            )
        return data.decode()

    def _run_command(self, template: list[str], task: dict[str, Any], input_text: str, start_offset: int) -> str:
        spec = CommandSpec(
            template=tuple(template),
            description=task.get("d", ""),
            input_text=input_text,
            task_id=task["id"],
            attempt=task["a"],
            env={
                "MAOS_ENDPOINT": self._endpoint,
                "MAOS_TASK_ID": task["id"],
                "MAOS_ATTEMPT": str(task["a"]),
                "MAOS_ROOT_ID": task.get("root", "") or task["id"],
                "MAOS_AGENT_TYPE": task["ty"],
            },
            grace_seconds=self._child_grace,
            max_output_bytes=self._max_result,
        )
        result: str = self._run_async(run_command(spec, lambda: self._capture.last_line(start_offset)))
        return result

    def _run_async(self, coro: Coroutine[Any, Any, Any]) -> Any:
        loop = self._loop
        if loop is None:
            loop = self._loop = _new_event_loop()
        task = loop.create_task(coro)
        with self._cond:
            self._current_async = task
            cancel_now = self._cancel_requested
        if cancel_now:
            task.cancel()
        try:
            return loop.run_until_complete(task)
        finally:
            with self._cond:
                self._current_async = None

    def _emit(self, event: dict[str, Any], *, flush_now: bool) -> None:
        with self._cond:
            now = time.monotonic()
            if not self._outbox:
                self._oldest = now
            self._outbox.append(event)
            if flush_now or now - self._oldest >= FLUSH_DELAY_SECONDS:
                self._flush_locked()
            else:
                self._cond.notify()

    # ---- ContextRuntime (any thread) ----

    def send_progress(self, ctx: TaskContext, fraction: float, message: str) -> None:
        """Queue a progress event for the task `ctx` belongs to (dropped once that task is over)."""
        with self._cond:
            if ctx is not self._current_ctx:
                return
            if not self._outbox:
                self._oldest = time.monotonic()
            self._outbox.append({"s": self._current_seq, "p": fraction, "m": message})
            self._cond.notify()

    def schedule_progress_flush(self, ctx: TaskContext, at: float) -> None:
        """Have the flusher thread call ctx.flush_progress() at `at`."""
        with self._cond:
            heapq.heappush(self._deferred, (at, next(self._deferred_seq), ctx))
            self._cond.notify()

    # ---- flusher thread ----

    def _flush_loop(self) -> None:
        cond = self._cond
        with cond:
            while not self._closing:
                now = time.monotonic()
                due = float("inf")
                if self._outbox:
                    due = self._oldest + FLUSH_DELAY_SECONDS
                if self._deferred:
                    due = min(due, self._deferred[0][0])
                if due > now:
                    cond.wait(None if due == float("inf") else due - now)
                    continue
                while self._deferred and self._deferred[0][0] <= now:
                    # The lock is re-entrant and contexts never hold their own lock while calling
                    # us, so flushing a context from here cannot deadlock.
                    heapq.heappop(self._deferred)[2].flush_progress()
                if self._outbox and self._oldest + FLUSH_DELAY_SECONDS <= now:
                    try:
                        self._flush_locked()
                    except OSError:
                        return

    def _flush_locked(self) -> None:
        if self._outbox:
            frame = encode_frame({"ev": self._outbox})
            self._outbox = []
            self._write_locked(frame)

    def _write_locked(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            written = os.write(self._out_fd, view)
            view = view[written:]

    # ---- reader thread ----

    def _read_frames(self) -> None:
        decoder = self._decoder
        try:
            # Frames that arrived in the same read as the init frame come first.
            pending = self._early_frames
            while True:
                for body in pending:
                    self._on_message(decode_body(body))
                data = os.read(self._in_fd, 1 << 18)
                if not data:
                    break
                pending = decoder.feed(data)
        except Exception:  # the worker cannot go on without its input: say why, then stop
            traceback.print_exc(file=self._diag)
            self._diag.flush()
        self._on_host_gone()

    def _on_message(self, message: dict[str, Any]) -> None:
        run = message.get("run")
        if run:
            self._inbox.put(run)
        for seq in message.get("cancel", ()):
            self._cancel(seq)
        if message.get("stop"):
            self._inbox.put(None)

    def _cancel(self, seq: int) -> None:
        with self._cond:
            if seq == self._current_seq:
                self._cancel_requested = True
                if self._current_ctx is not None:
                    self._current_ctx._cancel()
                task = self._current_async
                if task is not None and self._loop is not None:
                    self._loop.call_soon_threadsafe(task.cancel)
            elif seq > self._current_seq:
                # Not started yet (still in this worker's batch): skip it when its turn comes.
                self._cancel_before_start.add(seq)

    def _on_host_gone(self) -> None:
        """stdin closed: the host stopped us or died. Cancel what runs, stop soon either way."""
        if self._host_gone.is_set():
            return
        self._host_gone.set()
        with self._cond:
            seq = self._current_seq
        if seq:
            self._cancel(seq)
        self._inbox.put(None)
        time.sleep(_ORPHAN_GRACE_SECONDS)
        # Still here: a sync task ignores cancellation. Take our own command children down with us.
        # The diagnostics pipe's reader is the host, which may be dead: never let that stop the exit.
        with contextlib.suppress(OSError, ValueError):
            print(f"worker {os.getpid()}: host gone and the running task did not stop; exiting", file=self._diag)
            self._diag.flush()
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(1)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _decode_dependencies(raw: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    deps = []
    for dep in raw:
        text = dep.get("result")
        try:
            result = orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            result = text
        deps.append({**dep, "result": result})
    return deps


def _read_init(in_fd: int, decoder: FrameDecoder) -> tuple[dict[str, Any], list[bytes]]:
    """Block until the first frame (the host's init) arrives; also return frames read along with it."""
    while True:
        data = os.read(in_fd, 1 << 16)
        if not data:
            raise EOFError("the host closed stdin before sending init")
        frames = decoder.feed(data)
        if frames:
            init = decode_body(frames[0]).get("init")
            if not isinstance(init, dict):
                raise ValueError("the first frame must be init")
            return init, frames[1:]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m maos.agenthost.worker`."""
    parser = argparse.ArgumentParser(prog="python -m maos.agenthost.worker", description=__doc__)
    parser.add_argument("--state-fd", type=int, default=-1, help="fd of the 8-byte shared state file")
    args = parser.parse_args(argv)

    # The host coordinates shutdown; a Ctrl-C in the host's terminal must not kill workers mid-task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    in_fd = os.dup(0)
    out_fd = os.dup(1)
    diag = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    faulthandler.enable(file=diag, all_threads=True)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    decoder = FrameDecoder()
    try:
        init, early_frames = _read_init(in_fd, decoder)
    except (EOFError, ValueError) as exc:
        print(f"worker {os.getpid()}: cannot start: {exc}", file=diag)
        return 2

    capture = _Capture(int(init.get("log_tail_bytes", DEFAULT_LOG_TAIL_BYTES)))
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(capture.fd, 1)
    os.dup2(capture.fd, 2)
    # print() goes to the (line-buffered) stderr stream, so it is flushed into the task log promptly.
    sys.stdout = sys.stderr

    for entry in reversed(init.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)

    state = None
    if args.state_fd >= 0:
        state = mmap.mmap(args.state_fd, _STATE.size)
        os.close(args.state_fd)  # the mapping stays; child processes must not inherit the fd
    _start_tracing(diag)
    runtime = WorkerRuntime(
        in_fd=in_fd,
        out_fd=out_fd,
        decoder=decoder,
        early_frames=early_frames,
        init=init,
        state=state,
        capture=capture,
        diag=diag,
    )
    # Agents allocate many short-lived containers (messages, parsed JSON): at the default gen-0
    # threshold (700) a collection runs every few messages. Startup's objects never die: freeze
    # them so collections do not walk them again. As the daemons do (their __main__).
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    try:
        return runtime.serve()
    except BrokenPipeError:
        return 0
    finally:
        tracing.shutdown()  # export this process's last spans (bounded)


def _start_tracing(diag: IO[str]) -> None:
    """Trace as the host does ($MAOS_TRACING, which it sets): each agent run becomes a span here."""
    try:
        spec = tracing.configure_from_env(TRACING_SERVICE_NAME)
    except MaosError as exc:  # never fail tasks over tracing
        print(f"worker {os.getpid()}: tracing off: {exc}", file=diag)
        return
    if spec.enabled:
        # OpenTelemetry's own complaints (an unreachable collector) belong in the host's log, not in task logs.
        otel_log = logging.getLogger("opentelemetry")
        otel_log.addHandler(logging.StreamHandler(diag))
        otel_log.propagate = False
