"""A control plane and one agent host as child processes: what `maosctl up` runs.

Each daemon gets its own session (so a terminal's Ctrl-C reaches only
maosctl, which then stops them in order: the host first, so it can report
what it was doing, then the control plane) and a log file under DATA_DIR/logs.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from maos.errors import FailedPrecondition, Unavailable

from .._sync_client import Client

STOP_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.05


class StartupError(FailedPrecondition):
    """A daemon did not come up; the message names its log file."""


@dataclass
class Daemon:
    """One child process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        """None while running, else its exit status."""
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self.process.wait()

    def last_log_line(self) -> str:
        """The log's last non-empty line, for error messages."""
        try:
            with self.log.open("rb") as fh:
                fh.seek(max(self.log.stat().st_size - 4096, 0))
                lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def describe_exit(self, when: str) -> str:
        """'the control plane exited with code 1 before it was ready — see LOG (last line: ...)'."""
        last = self.last_log_line()
        tail = f" (last line: {last})" if last else ""
        return f"the {self.name} exited with code {self.exit_code()} {when} — see {self.log}{tail}"

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait()
        return self.process.returncode


def _terminate_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the launcher dies, even by SIGKILL,
    so daemons never outlive `maosctl up` (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def spawn_daemon(name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Daemon:
    """Start `args` in its own session with stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        fh.write(f"--- {stamp}: {' '.join(args)}\n".encode())
        fh.flush()
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            # The parent-death signal fires when the forking *thread* ends: only the main thread's
            # life is the launcher's life (a daemon started from a worker thread must outlive it).
            preexec_fn=_terminate_with_parent if threading.current_thread() is threading.main_thread() else None,
        )
    return Daemon(name, process, log)


def wait_ready_file(daemon: Daemon, ready: Path, timeout: float) -> str:
    """The endpoint a control plane writes to its ready file once it serves."""
    deadline = time.monotonic() + timeout
    # A file has no event to wait on; a 50 ms poll during start-up costs nothing.
    while True:
        if ready.exists():
            try:
                return str(json.loads(ready.read_text())["endpoint"])
            except (ValueError, KeyError):
                pass  # written but not complete yet; read again next turn
        if daemon.exit_code() is not None:
            raise StartupError(daemon.describe_exit("before it was ready"))
        if time.monotonic() > deadline:
            raise StartupError(f"the {daemon.name} did not report ready within {timeout:.0f}s — see {daemon.log}")
        time.sleep(_POLL_SECONDS)


class LocalCluster:
    """Start, watch and stop a control plane plus one agent host on this machine."""

    def __init__(
        self,
        *,
        listen: str,
        data_dir: Path,
        workers: int | None = None,
        agents: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.listen = listen
        self.agents = agents.resolve() if agents is not None else None
        self.data_dir = data_dir
        self.workers = workers
        self.python = python
        self.endpoint: str | None = None
        self.host_id: str | None = None
        self.daemons: list[Daemon] = []

    @property
    def log_dir(self) -> Path:
        """DATA_DIR/logs: where the daemons' output goes."""
        return self.data_dir / "logs"

    def start_controlplane(self, timeout: float = 30.0) -> str:
        """Start the control plane and return the endpoint it reports once it serves."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready = self.data_dir / "controlplane.ready.json"
        ready.unlink(missing_ok=True)
        args = [self.python, "-m", "maos.controlplane", "--listen", self.listen]
        args += ["--data-dir", str(self.data_dir), "--ready-file", str(ready)]
        if self.agents is not None:
            args += ["--agents", str(self.agents)]
        daemon = spawn_daemon("control plane", args, self.log_dir / "controlplane.log")
        self.daemons.append(daemon)
        self.endpoint = wait_ready_file(daemon, ready, timeout)
        return self.endpoint

    def start_agenthost(self, timeout: float = 30.0) -> str:
        """Start one agent host and return its id once it has registered."""
        if self.endpoint is None:
            raise RuntimeError("start_controlplane() first")
        with Client(self.endpoint, timeout=2.0) as client:
            before = {h.id for h in client.list_hosts()}
            args = [self.python, "-m", "maos.agenthost", "--controlplane", self.endpoint]
            if self.workers is not None:
                args += ["--workers", str(self.workers)]
            if self.agents is not None:
                args += ["--agents", str(self.agents)]
            daemon = spawn_daemon("agent host", args, self.log_dir / "agenthost.log")
            self.daemons.append(daemon)
            deadline = time.monotonic() + timeout
            while True:
                with contextlib.suppress(Unavailable):
                    fresh = [h for h in client.list_hosts() if h.id not in before]
                    if fresh:
                        self.host_id = fresh[0].id
                        return self.host_id
                if daemon.exit_code() is not None:
                    raise StartupError(daemon.describe_exit("before it registered"))
                if time.monotonic() > deadline:
                    raise StartupError(
                        f"the agent host did not register with {self.endpoint} within {timeout:.0f}s — see {daemon.log}"
                    )
                time.sleep(0.1)

    def dead(self) -> Daemon | None:
        """The first daemon that has exited, if any."""
        return next((d for d in self.daemons if d.exit_code() is not None), None)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every daemon, newest first (the host before its control plane). Idempotent."""
        for daemon in reversed(self.daemons):
            daemon.stop(grace)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def relative(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
