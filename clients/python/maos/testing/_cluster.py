"""Real daemons as child processes: for tests of agents, the e2e suite and benchmarks.

Servers bind port 0 and report the port through a ready file; every process
logs to a file under the test's directory so a failure can be read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from maos.v1 import hosts_pb2, hosts_pb2_grpc


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Agent functions are imported by module path in the workers: let them see the caller's cwd.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
    env.setdefault("MAOS_LOG_LEVEL", "info")
    return env


class DaemonProcess:
    """A daemon started with `python -m MODULE ARGS`, logging to `log_path`."""

    def __init__(self, module: str, args: list[str], log_path: Path) -> None:
        self.module = module
        self.args = args
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # closed in stop()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=self._log, stderr=subprocess.STDOUT, env=_env()
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class ControlPlaneProcess(DaemonProcess):
    endpoint: str = ""


def start_controlplane(
    data_dir: Path,
    *,
    listen: str = "127.0.0.1:0",
    agents: Path | None = None,
    extra: list[str] | None = None,
    timeout: float = 30.0,
) -> ControlPlaneProcess:
    ready = data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    args = ["--listen", listen, "--data-dir", str(data_dir), "--ready-file", str(ready)]
    if agents is not None:
        args += ["--agents", str(agents)]
    cp = ControlPlaneProcess("maos.controlplane", args + (extra or []), data_dir / "controlplane.log")
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if not cp.alive():
            raise RuntimeError(f"control plane exited with {cp.proc.returncode}:\n{cp.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            cp.kill()
            raise RuntimeError(f"control plane not ready after {timeout}s:\n{cp.log_text()[-3000:]}")
        time.sleep(0.02)
    cp.endpoint = json.loads(ready.read_text())["endpoint"]
    return cp


def start_agenthost(
    endpoint: str,
    log_dir: Path,
    *,
    workers: int = 2,
    agents: Path | None = None,
    host_id: str | None = None,
    extra: list[str] | None = None,
) -> DaemonProcess:
    args = ["--controlplane", endpoint, "--workers", str(workers)]
    if agents is not None:
        args += ["--agents", str(agents)]
    if host_id is not None:
        args += ["--host-id", host_id]
    name = host_id or f"host-{time.monotonic_ns()}"
    return DaemonProcess("maos.agenthost", args + (extra or []), log_dir / f"{name}.log")


def connected_hosts(endpoint: str) -> list[hosts_pb2.Host]:
    with grpc.insecure_channel(endpoint) as channel:
        stub = hosts_pb2_grpc.HostServiceStub(channel)
        return list(stub.ListHosts(hosts_pb2.ListHostsRequest(), timeout=5).hosts)


def wait_for_hosts(endpoint: str, count: int, timeout: float = 30.0) -> list[hosts_pb2.Host]:
    deadline = time.monotonic() + timeout
    while True:
        hosts = connected_hosts(endpoint)
        if len(hosts) >= count:
            return hosts
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(hosts)} of {count} hosts connected after {timeout}s")
        time.sleep(0.05)
