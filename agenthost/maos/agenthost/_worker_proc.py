"""Host-side handle of one worker process: spawn it, exchange frames, collect its diagnostics, see it exit."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import mmap
import os
import signal
import struct
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from ._frames import FrameDecoder, FrameError, decode_body

logger = logging.getLogger(__name__)

_STATE = struct.Struct("<q")
_DIAG_LINES = 40


class WorkerProcess:
    """One `python -m maos.agenthost.worker` child.

    The child leads its own process group (start_new_session), so `kill()`
    also takes down command processes it started, and a Ctrl-C meant for
    the host does not reach it. Every decoded frame goes to `on_message`;
    after stdout closes and the process is reaped, `on_exit(returncode)` is
    called exactly once.
    """

    def __init__(
        self,
        worker_id: str,
        on_message: Callable[[WorkerProcess, dict[str, Any]], None],
        on_exit: Callable[[WorkerProcess, int], None],
    ) -> None:
        self.worker_id = worker_id
        self.pid = 0
        self._on_message = on_message
        self._on_exit = on_exit
        self._proc: asyncio.subprocess.Process | None = None
        self._state: mmap.mmap | None = None
        self._diag: collections.deque[str] = collections.deque(maxlen=_DIAG_LINES)
        self._tasks: list[asyncio.Task[None]] = []
        self._exited = asyncio.Event()
        self.returncode: int | None = None

    async def spawn(self, init_frame: bytes, env: Mapping[str, str]) -> None:
        """Start the process and hand it its init frame (it answers with a hello frame)."""
        # An 8-byte shared file the worker writes the running task's seq into; read if it dies.
        with tempfile.TemporaryFile(prefix="maos-worker-state-") as f:
            os.ftruncate(f.fileno(), _STATE.size)
            self._state = mmap.mmap(f.fileno(), _STATE.size)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "maos.agenthost.worker",
                "--state-fd",
                str(f.fileno()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(f.fileno(),),
                start_new_session=True,
                env=dict(env),
            )
        self._proc = proc
        self.pid = proc.pid
        self.send(init_frame)
        self._tasks = [
            asyncio.create_task(self._read_frames(proc), name=f"{self.worker_id}-frames"),
            asyncio.create_task(self._read_diag(proc), name=f"{self.worker_id}-diag"),
        ]

    @property
    def alive(self) -> bool:
        """Spawned and not yet reaped."""
        return self._proc is not None and self.returncode is None

    def send(self, frame: bytes) -> None:
        """Queue a frame on the worker's stdin (never blocks: frames are bounded by batch sizes)."""
        proc = self._proc
        if proc is None or proc.stdin is None or self.returncode is not None or proc.stdin.is_closing():
            return
        proc.stdin.write(frame)

    def close_input(self) -> None:
        """Close stdin: the worker finishes its current task, then exits."""
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()

    def running_seq(self) -> int:
        """The seq of the task the worker runs right now (0 between tasks), from shared memory."""
        state = self._state
        if state is None or state.closed:
            return 0
        seq: int = _STATE.unpack_from(state, 0)[0]
        return seq

    def kill(self) -> None:
        """SIGKILL the worker and everything in its process group."""
        if self.pid and self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def diag_tail(self) -> str:
        """The last lines the worker wrote to its diagnostic stream (e.g. a faulthandler dump)."""
        return "\n".join(self._diag)

    async def wait_exited(self, within: float | None = None) -> bool:
        """Wait until the exit was handled (at most `within` seconds); False on timeout."""
        if self._proc is None:
            return True  # never started
        try:
            await asyncio.wait_for(self._exited.wait(), within)
        except TimeoutError:
            return False
        return True

    async def _read_frames(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        reader = proc.stdout
        decoder = FrameDecoder()
        on_message = self._on_message
        try:
            while True:
                data = await reader.read(1 << 18)
                if not data:
                    break
                for body in decoder.feed(data):
                    on_message(self, decode_body(body))
        except FrameError as exc:
            logger.error("worker %s (pid %d) sent a bad frame, killing it: %s", self.worker_id, self.pid, exc)
            self.kill()
        except Exception:
            logger.exception("worker %s (pid %d): error handling its frames, killing it", self.worker_id, self.pid)
            self.kill()
        try:
            code = await proc.wait()
            # Let the diagnostic reader drain, so a crash dump is complete before the exit is reported.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._tasks[1]), 1.0)
            self.returncode = code
            self.close_input()
            self._on_exit(self, code)
        finally:
            if self._state is not None:
                self._state.close()
            self._exited.set()

    async def _read_diag(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip()
            self._diag.append(text)
            logger.warning("worker %s (pid %d): %s", self.worker_id, self.pid, text)
